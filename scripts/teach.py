"""``accelrl-teach``: train an agent with a task teacher (a curriculum) for several seeds.

Usage::

    accelrl-teach --env Pendulum-v1 --agent ppo --teacher alp_gmm --task_space pendulum_dynamics \\
        --seeds 0 1 2 --out runs/alp_gmm
    accelrl-teach --agent ppo --teacher random --task_space three_body_ic \\
        --out runs/tb_random --total_timesteps 200000 --mastered_every 2
    accelrl-teach --agent ppo --teacher riac --task_space pendulum_dynamics --help   # every field
    accelrl-teach --resume runs/alp_gmm

``accelrl-train`` with ``--teacher`` and ``--task_space`` required: the same flags, the same run
spec and the same library path (:func:`accelrl.agents.train_run`). The teacher (``alp_gmm``,
``covar_gmm``, ``riac``, ``random``; settings as a JSON object in ``--teacher_kwargs``) chooses
the task of every episode from the task space (a named box of environment params,
``accelrl.curricula.registered_task_spaces()``); the student is the agent, unchanged. ``--env``
may be left out: it must be the task space's environment.

The run folder is ``accelrl-train``'s plus what the teacher's strategy adds
(:mod:`accelrl.curricula.report`): a ``mastered`` column in the metrics (the fraction of a
fixed, seeded test set of ``--test_tasks`` tasks mastered, every ``--mastered_every``
segments), ``mastered.png``, ``seed_<s>/tasks.csv`` (every task the teacher gave) and
``tasks.png`` (heat maps of those tasks). ``config.json`` records the teacher and these
settings, so ``--resume`` continues a run with its teacher, measurements and task log.
"""

from __future__ import annotations

import sys

from accelrl.scripts.train import main as train_main

PROG = "accelrl-teach"


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, prog=PROG, require_teacher=True)


if __name__ == "__main__":
    sys.exit(main())
