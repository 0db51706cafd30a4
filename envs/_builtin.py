"""accelrl's own environment ids and the modules that register them (imported on first ``make``).

Each environment module calls :func:`accelrl.envs.registry.register` at import time. Importing
them here would import gymnax (their base class and spaces), and gymnax imports its whole
environment zoo (matplotlib, seaborn, scipy.stats, pandas), so importing :mod:`accelrl.envs`
would take seconds more. Instead each id is *provided* with its module and multi-agent flag, and
:func:`accelrl.envs.make` imports the module on first use. tests/envs/test_registry.py checks
that importing the modules registers exactly these ids (the table lives in ``accelrl/_catalog.py``; keep docs/envs/ in sync).
"""

from accelrl._catalog import BUILTIN_ENVS
from accelrl.envs.registry import provide

#: The environment modules, in registration order.
ENV_MODULES: tuple[str, ...] = tuple(dict.fromkeys(m for m, _ in BUILTIN_ENVS.values()))

for _env_id, (_module, _multi_agent) in BUILTIN_ENVS.items():
    provide(_env_id, _module, multi_agent=_multi_agent)
