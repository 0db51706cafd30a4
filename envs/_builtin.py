"""Imports every accelrl environment module so that each registers its ids.

Each environment module calls :func:`accelrl.envs.registry.register` at import time.
"""

import importlib

_ENV_MODULES: list[str] = [
    "accelrl.envs.three_body",
    "accelrl.envs.malloc",
    "accelrl.envs.mpe",
]

for _name in _ENV_MODULES:
    importlib.import_module(_name)
