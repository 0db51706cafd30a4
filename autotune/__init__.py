"""accelrl.autotune: hyperparameter optimisation over accelrl agents, in-process.

* :mod:`~accelrl.autotune.spaces`: search spaces over an agent's config (shape-changing: one
  program per distinct value) and hparams (shape-preserving: vmapped together), default spaces
  for PPO and SAC, ConfigSpace JSON import and export.
* :mod:`~accelrl.autotune.protocol`: disjoint tuning and test seeds; IQM and
  stratified-bootstrap intervals (rliable's definitions).
* :mod:`~accelrl.autotune.tuners`: tuners as registered, typed components: a settings
  dataclass and ``run(settings, spec, out)`` per method, and the :class:`StudySpec` (what is
  tuned, on which seeds, scored how) every tuner takes.
* :mod:`~accelrl.autotune.backend` (groups of configurations that share config values train
  as one vmapped :class:`~accelrl.agents.runner.Runner` program: :class:`RunnerBackend`,
  :class:`GroupRun`), :mod:`~accelrl.autotune.folder` (the study folder, ``open_study``) and
  :mod:`~accelrl.autotune.report` (the incumbent's test and the report); ``study`` names them.
* :mod:`~accelrl.autotune.random_search`: random search.
* :mod:`~accelrl.autotune.hyperband`: Hyperband and successive halving on the step budget
  (promoted configurations continue).
* :mod:`~accelrl.autotune.pbt`: population-based training in one vmapped program.
* :mod:`~accelrl.autotune.tpe`: Optuna's TPE with a crash-safe, shareable study.

>>> from accelrl.agents.spec import RunSpec
>>> from accelrl.autotune import RandomSearchSettings, StudySpec, random_search, default_space
>>> run = RunSpec("CartPole-v1", "ppo", config={"total_timesteps": 100_000})
>>> spec = StudySpec(run, default_space("ppo"))
>>> result = random_search(RandomSearchSettings(trials=16), spec, "runs/tune_cartpole")
"""

from accelrl.autotune.hyperband import HyperbandSettings, hyperband
from accelrl.autotune.pbt import PBTSettings, pbt
from accelrl.autotune.protocol import (
    DEFAULT_TEST_SEEDS,
    DEFAULT_TUNING_SEEDS,
    check_seeds,
    iqm,
    stratified_bootstrap_ci,
    summarize,
)
from accelrl.autotune.random_search import RandomSearchSettings, random_search
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
from accelrl.autotune.tpe import TPESettings, tpe
from accelrl.autotune.tuners import StudySpec, register_tuner, registered_tuners, tuner

__all__ = [
    "DEFAULT_TEST_SEEDS",
    "HyperbandSettings",
    "PBTSettings",
    "RandomSearchSettings",
    "StudySpec",
    "TPESettings",
    "register_tuner",
    "registered_tuners",
    "tuner",
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
