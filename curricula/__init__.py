"""accelrl.curricula: what the student sees at reset.

Task teachers (ALP-GMM and the baselines Covar-GMM, RIAC and Random) are reset strategies over
a task space (a named box of environment params); the mixture code they share is
:mod:`accelrl.curricula.gmm`; :func:`mastered_fraction` and :func:`mastered_hook` measure the
share of a fixed test set of tasks a student masters. Snapshot starts (S3RL) are the reset
strategy :class:`SnapshotStarts` over a bank of a teacher policy's states
(:mod:`accelrl.curricula.snapshot`).

>>> space = task_space("pendulum_dynamics")
>>> env, params = space.make()
>>> agent, config, hparams = build(VecEnv(env, 8, ALPGMM(space)), "ppo", env_id=space.env_id)
>>> runner = Runner(agent, [0, 1], hparams, on_segment=mastered_hook(space, every=5))
"""

from accelrl.curricula.evaluation import fixed_action_mastery, mastered_fraction, mastered_hook
from accelrl.curricula.snapshot import (
    BankError,
    SnapshotBank,
    SnapshotStarts,
    collect_from_run,
    load_bank,
    save_bank,
)
from accelrl.curricula.tasks import (
    TaskSpace,
    UnknownTaskSpaceError,
    apply_tasks,
    register_task_space,
    registered_task_spaces,
    task_space,
    test_tasks,
)
from accelrl.curricula.teachers import (
    ALPGMM,
    RIAC,
    TEACHERS,
    CovarGMM,
    RandomTeacher,
    Teacher,
    make_teacher,
    nearest_neighbour_alp,
)

test_tasks.__test__ = False  # a function, not a pytest test

__all__ = [
    "ALPGMM",
    "RIAC",
    "TEACHERS",
    "BankError",
    "CovarGMM",
    "RandomTeacher",
    "SnapshotBank",
    "SnapshotStarts",
    "TaskSpace",
    "Teacher",
    "UnknownTaskSpaceError",
    "apply_tasks",
    "collect_from_run",
    "load_bank",
    "make_teacher",
    "fixed_action_mastery",
    "mastered_fraction",
    "mastered_hook",
    "nearest_neighbour_alp",
    "register_task_space",
    "registered_task_spaces",
    "save_bank",
    "task_space",
    "test_tasks",
]
