"""accelrl.autotune: hyperparameter optimisation over accelrl agents, in-process.

* :mod:`~accelrl.autotune.spaces`: search spaces over an agent's config (shape-changing: one
  program per distinct value) and hparams (shape-preserving: vmapped together), default spaces
  for PPO and SAC, ConfigSpace JSON import and export.
* :mod:`~accelrl.autotune.protocol`: disjoint tuning and test seeds; IQM and
  stratified-bootstrap intervals (rliable's definitions).
* :mod:`~accelrl.autotune.study`: what every tuner shares: groups of configurations that
  share config values train as one vmapped :class:`~accelrl.agents.runner.Runner` program
  (:class:`RunnerBackend`, :class:`GroupRun`), the run folder, the incumbent's test.
* :mod:`~accelrl.autotune.random_search`: random search.
* :mod:`~accelrl.autotune.hyperband`: Hyperband and successive halving on the step budget
  (promoted configurations continue).
* :mod:`~accelrl.autotune.pbt`: population-based training in one vmapped program.
* :mod:`~accelrl.autotune.tpe`: Optuna's TPE with a crash-safe, shareable study.

>>> from accelrl.autotune import random_search, default_space
>>> result = random_search("CartPole-v1", "ppo", default_space("ppo"), trials=16,
...                        budget=100_000, out="runs/tune_cartpole")
"""

from accelrl.autotune.hyperband import hyperband
from accelrl.autotune.pbt import pbt
from accelrl.autotune.protocol import (
    DEFAULT_TEST_SEEDS,
    DEFAULT_TUNING_SEEDS,
    check_seeds,
    iqm,
    stratified_bootstrap_ci,
    summarize,
)
from accelrl.autotune.random_search import random_search
from accelrl.autotune.spaces import (
    Categorical,
    Float,
    Int,
    SearchSpace,
    SpaceFileError,
    default_space,
    from_configspace_json,
    read_space,
    to_configspace_json,
    write_space,
)
from accelrl.autotune.study import GroupRun, RunnerBackend, SearchResult
from accelrl.autotune.tpe import tpe

__all__ = [
    "DEFAULT_TEST_SEEDS",
    "DEFAULT_TUNING_SEEDS",
    "Categorical",
    "Float",
    "GroupRun",
    "Int",
    "RunnerBackend",
    "SearchResult",
    "SearchSpace",
    "SpaceFileError",
    "check_seeds",
    "default_space",
    "from_configspace_json",
    "hyperband",
    "iqm",
    "pbt",
    "random_search",
    "read_space",
    "stratified_bootstrap_ci",
    "summarize",
    "to_configspace_json",
    "tpe",
    "write_space",
]
