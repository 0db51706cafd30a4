"""``accelrl-tune``: tune an agent's hyperparameters on tuning seeds, report on test seeds.

Usage::

    accelrl-tune --env CartPole-v1 --agent ppo --method random --trials 16 --budget 100000 \\
        --out runs/tune_cartpole
    accelrl-tune --env Pendulum-v1 --agent sac --method hyperband --trials 27 --budget 30000 \\
        --out runs/tune_pendulum --eta 3 --brackets 3
    accelrl-tune --env CartPole-v1 --agent ppo --method pbt --trials 16 --budget 200000 \\
        --out runs/pbt --intervals 10 --space my_space.json
    accelrl-tune --env CartPole-v1 --agent ppo --method tpe --trials 32 --budget 100000 \\
        --out runs/tpe --storage journal
    accelrl-tune --resume runs/tpe [--trials 64]
    accelrl-tune --env CartPole-v1 --agent ppo --method pbt --backend ray --trials 8 \
        --budget 200000 --out runs/ray_pbt          # Ray Tune's PBT (pip install 'accelrl[ray]')

``--trials`` is the number of configurations (random, hyperband, successive halving, TPE:
finished trials in all, across resumes) or the population size (PBT); ``--budget`` the most
environment steps one configuration gets, per seed. Configurations are scored on the tuning
seeds (default 0-4); the incumbent and the agent's default configuration are then trained
again on the test seeds (default 5-9) and evaluated: ``report.md`` gives both as IQM with
stratified-bootstrap intervals.

The search space is the agent's default (``accelrl.autotune.default_space``) or a ConfigSpace
JSON file (``--space``; ``accelrl.autotune.write_space`` writes one). Fields fixed for every run
go in ``--overrides '{"num_envs": 16}'``.

The run folder: ``search.json`` (the settings; what ``--resume`` reads), ``trials.jsonl`` (one
line per finished trial), ``incumbent.json``, ``report.md``, ``incumbent_over_budget.png`` and,
for PBT, ``pbt_schedules.png``. ``--resume DIR`` continues an interrupted study without losing
or repeating a finished trial.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from accelrl._catalog import AGENT_NAMES
from accelrl.scripts._names import check_agent, check_env_id
from accelrl.scripts.train import UsageError, json_object

PROG = "accelrl-tune"
METHODS = ("random", "hyperband", "sha", "pbt", "tpe")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Tune an accelrl agent: search on tuning seeds, report on test seeds.",
        epilog=f"agents: {', '.join(AGENT_NAMES)}. See docs/autotune.md.",
    )
    p.add_argument("--env", help="environment id, e.g. CartPole-v1")
    p.add_argument("--agent", help="agent name, e.g. ppo or sac")
    p.add_argument("--method", choices=METHODS, default="random",
                   help="random search, Hyperband, successive halving (sha), PBT or TPE")  # fmt: skip
    p.add_argument("--trials", type=int, help="configurations (PBT: population size)")
    p.add_argument("--budget", type=int, help="most environment steps per configuration and seed")
    p.add_argument("--out", help="run folder (a folder holding the same search resumes it)")
    p.add_argument("--resume", metavar="DIR", help="continue the study in DIR")
    p.add_argument("--space", help="ConfigSpace JSON file (default: the agent's default space)")
    p.add_argument("--tuning-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--test-seeds", type=int, nargs="+", default=[5, 6, 7, 8, 9])
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    p.add_argument("--overrides", default="{}", help="JSON object of fields fixed for every run")
    p.add_argument("--env-kwargs", default="{}", help="JSON object of make() keyword arguments")
    p.add_argument("--score-updates", type=int, help="updates averaged into a score (default 10%%)")
    p.add_argument("--eval-episodes", type=int, help="evaluation episodes per test seed")
    p.add_argument("--max-members", type=int, help="most configurations x seeds per program")
    p.add_argument("--eta", type=int, default=3, help="hyperband/sha: halving rate")
    p.add_argument("--brackets", type=int, default=3, help="hyperband/sha: s_max + 1")
    p.add_argument("--intervals", type=int, default=10, help="pbt: exploit/explore points")
    p.add_argument(
        "--burn-in",
        type=int,
        default=0,
        help="pbt: environment steps per member before the first exploit (default 0)",
    )
    p.add_argument("--batch", type=int, default=4, help="tpe: configurations per round")
    p.add_argument("--storage", choices=("sqlite", "journal"), default="sqlite",
                   help="tpe: Optuna storage (journal: several processes)")  # fmt: skip
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="ray: Ray Tune's ASHA (--method hyperband/sha) or PBT (--method pbt)")  # fmt: skip
    p.add_argument("--num-cpus", type=int, help="ray: CPUs of the local Ray instance")
    p.add_argument("--bootstrap-reps", type=int, default=50_000)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _from_search_file(folder: Path, trials: int | None) -> dict[str, Any]:
    """The settings of the study in ``folder`` as keyword arguments of its tuner."""
    from accelrl.autotune.spaces import from_configspace_json

    path = folder / "search.json"
    if not path.exists():
        raise UsageError(f"{folder} holds no study (no search.json); start one with --out")
    s = json.loads(path.read_text())
    if s["method"].startswith("ray_"):
        raise UsageError(f"{folder} is a Ray Tune study; those do not resume (start a new one)")
    kw = {
        "method": s["method"],
        "env_id": s["env"],
        "agent": s["agent"],
        "space": from_configspace_json(json.dumps(s["space"]), source=str(path)),
        "budget": s["budget"],
        "out": folder,
        "tuning_seeds": s["tuning_seeds"],
        "test_seeds": s["test_seeds"],
        "overrides": s.get("overrides") or {},
        "env_kwargs": s.get("env_kwargs") or {},
        "score_updates": s.get("score_updates"),
        "eval_episodes": s.get("eval_episodes"),
        "seed": s.get("seed", 0),
        "trials": int(trials if trials is not None else s["trials"]),
    }
    extra = {
        "hyperband": ("eta", "brackets", "successive_halving"),
        "pbt": ("intervals", "quantile", "resample_probability", "burn_in"),
        "tpe": ("batch", "storage", "n_startup_trials"),
    }.get(s["method"], ())
    kw.update({k: s[k] for k in extra if k in s})
    return kw


def _from_args(a: argparse.Namespace) -> dict[str, Any]:
    from accelrl.autotune.spaces import read_space

    for flag, value in (("--env", a.env), ("--agent", a.agent), ("--out", a.out),
                        ("--budget", a.budget), ("--trials", a.trials)):  # fmt: skip
        if value is None:
            raise UsageError(f"missing {flag} (or use --resume DIR)")
    for problem in (check_env_id(a.env), check_agent(a.agent)):
        if problem:
            raise UsageError(problem)
    if a.budget < 1 or a.trials < 1:
        raise UsageError(f"--budget and --trials must be >= 1, got {a.budget} and {a.trials}")
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    kw: dict[str, Any] = {
        "method": a.method,
        "env_id": a.env,
        "agent": a.agent,
        "space": read_space(a.space) if a.space else None,
        "budget": a.budget,
        "out": out,
        "tuning_seeds": a.tuning_seeds,
        "test_seeds": a.test_seeds,
        "overrides": json_object(a.overrides, "--overrides", '{"num_envs": 16}'),
        "env_kwargs": json_object(a.env_kwargs, "--env-kwargs", '{"num_actions": 5}'),
        "score_updates": a.score_updates,
        "eval_episodes": a.eval_episodes,
        "seed": a.seed,
        "trials": a.trials,
    }
    if a.backend == "ray":
        if a.method not in ("hyperband", "sha", "pbt"):
            raise UsageError(
                f"--backend ray runs Ray's ASHA (--method hyperband or sha) or PBT (--method "
                f"pbt), not --method {a.method}"
            )
        kw["method"] = "ray_pbt" if a.method == "pbt" else "ray_asha"
        if a.num_cpus is not None:
            kw["num_cpus"] = a.num_cpus
        return kw
    if a.method in ("hyperband", "sha"):
        kw.update(method="hyperband", eta=a.eta, brackets=a.brackets,
                  successive_halving=a.method == "sha")  # fmt: skip
    elif a.method == "pbt":
        kw["intervals"] = a.intervals
        if a.burn_in < 0:
            raise UsageError(f"--burn-in must be >= 0, got {a.burn_in}")
        kw["burn_in"] = a.burn_in
    elif a.method == "tpe":
        kw.update(batch=a.batch, storage=a.storage)
    if a.max_members is not None and a.method != "pbt":
        kw["max_members"] = a.max_members
    return kw


def run_tuner(kw: dict[str, Any], bootstrap_reps: int, log: Any) -> Any:
    """Call the tuner that ``kw["method"]`` names with the rest of ``kw``."""
    from accelrl.autotune import hyperband, pbt, random_search, tpe

    kw = dict(kw)
    method = kw.pop("method")
    if method.startswith("ray_"):
        from accelrl.autotune.ray_tune import ray_study

        return ray_study(**kw, scheduler=method[4:], bootstrap_reps=bootstrap_reps, log=log)
    if method == "pbt":
        kw["population"] = kw.pop("trials")
    fn = {"random": random_search, "hyperband": hyperband, "pbt": pbt, "tpe": tpe}[method]
    return fn(**kw, bootstrap_reps=bootstrap_reps, log=log)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = _parser().parse_args(argv)
    try:
        if a.resume:
            kw = _from_search_file(Path(a.resume), a.trials)
        else:
            kw = _from_args(a)
        log = (lambda _line: None) if a.quiet else (lambda line: print(line, flush=True))
        result = run_tuner(kw, a.bootstrap_reps, log)
    except (UsageError, ValueError, ImportError) as e:  # SpaceFileError is a ValueError
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print((Path(result.out) / "report.md").read_text())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
