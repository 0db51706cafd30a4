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
    accelrl-tune --config runs/cartpole/config.json --method random --trials 16 \
        --out runs/tune_that_run                   # the run a spec file describes
    accelrl-tune --env Pendulum-v1 --agent ppo --teacher alp_gmm --task_space pendulum_dynamics \\
        --method pbt --trials 8 --budget 200000 --space ppo_alp_gmm.json --score mastered \\
        --out runs/pbt_alp                         # hparams and teacher settings together
    accelrl-tune --env CartPole-v1 --agent ppo --method pbt --backend ray --trials 8 \
        --budget 200000 --out runs/ray_pbt          # Ray Tune's PBT (pip install 'accelrl[ray]')

Flags follow the other accelrl commands (``--tuning_seeds``; ``--tuning-seeds`` is accepted too).

``--trials`` is the number of configurations (random, hyperband, successive halving, TPE:
finished trials in all, across resumes) or the population size (PBT); ``--budget`` the most
environment steps one configuration gets, per seed. Configurations are scored on the tuning
seeds (default 0-4); the incumbent and the agent's default configuration are then trained
again on the test seeds (default 5-9) and evaluated: ``report.md`` gives both as IQM with
stratified-bootstrap intervals.

The study holds the run every trial trains as a run spec (``search.json``'s ``run``: what
``accelrl-train`` runs and a run folder's ``config.json`` holds); ``--config SPEC_FILE`` starts
from one, the flags on top. The search space is the agent's default (``accelrl.autotune.default_space``) or a ConfigSpace
JSON file (``--space``; ``accelrl.autotune.write_space`` writes one). Fields fixed for every run
go in ``--overrides '{"num_envs": 16}'``. With a reset strategy (``--teacher NAME --task_space
SPACE``, ``--snapshots BANK``) the space may also name its settings as the run spec does:
``teacher.random_task_ratio`` or ``snapshot.probability`` (they keep shapes: vmapped per
member, changed by PBT between segments), ``teacher.fit_rate`` or ``snapshot.horizon`` (they
change the program: configurations are grouped by them). ``--score mastered`` scores a teacher
run by the fraction of its fixed test set of tasks mastered (``--curriculum`` sets that set).

The run folder: ``search.json`` (the settings; what ``--resume`` reads), ``trials.jsonl`` (one
line per finished trial), ``incumbent.json``, ``report.md``, ``incumbent_over_budget.png`` and,
for PBT, ``pbt_schedules.png``. ``--resume DIR`` continues an interrupted study without losing
or repeating a finished trial.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Literal

from accelrl._catalog import AGENT_NAMES
from accelrl.scripts._cli import UsageError, main_wrapper, parse
from accelrl.scripts._names import check_agent, check_env_id
from accelrl.scripts.train import json_object

PROG = "accelrl-tune"
METHODS = ("random", "hyperband", "sha", "pbt", "tpe")


@dataclasses.dataclass
class TuneOptions:
    """Tune an accelrl agent: search on tuning seeds, report on test seeds (docs/autotune.md)."""

    env: str | None = None
    """Environment id, e.g. CartPole-v1."""
    agent: str | None = None
    """Agent name, e.g. ppo or sac."""
    method: Literal["random", "hyperband", "sha", "pbt", "tpe"] = "random"
    """Random search, Hyperband, successive halving (sha), PBT or TPE."""
    trials: int | None = None
    """Configurations (PBT: population size); with --resume, more trials extend the study."""
    budget: int | None = None
    """Most environment steps per configuration and seed."""
    out: str | None = None
    """Study folder (a folder holding the same search resumes it)."""
    resume: str | None = None
    """Continue the study in this folder (its search.json fixes everything but --trials)."""
    config: str | None = None
    """Run spec file (a run folder's config.json, TOML or YAML): the run every trial trains,
    the flags on top (its seeds are replaced by the tuning and test seeds)."""
    space: str | None = None
    """ConfigSpace JSON file (default: the agent's default space)."""
    tuning_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds every configuration is scored on."""
    test_seeds: tuple[int, ...] = (5, 6, 7, 8, 9)
    """Seeds the incumbent and the default are trained and evaluated on, once, at the end."""
    seed: int = 0
    """Seed of the sampler."""
    overrides: str = "{}"
    """JSON object of agent fields fixed for every run, e.g. '{"num_envs": 16}'."""
    env_kwargs: str = "{}"
    """JSON object of make() keyword arguments."""
    score_updates: int | None = None
    """Updates averaged into a score (default 10%)."""
    eval_episodes: int | None = None
    """Evaluation episodes per test seed."""
    max_members: int | None = None
    """Most configurations x seeds per program."""
    eta: int = 3
    """hyperband/sha: halving rate."""
    brackets: int = 3
    """hyperband/sha: s_max + 1."""
    intervals: int = 10
    """pbt: exploit/explore points."""
    burn_in: int = 0
    """pbt: environment steps per member before the first exploit."""
    batch: int = 4
    """tpe: configurations per round."""
    storage: Literal["sqlite", "journal"] = "sqlite"
    """tpe: Optuna storage (journal: several processes)."""
    backend: Literal["local", "ray"] = "local"
    """ray: Ray Tune's ASHA (--method hyperband/sha) or PBT (--method pbt)."""
    num_cpus: int | None = None
    """ray: CPUs of the local Ray instance."""
    teacher: str | None = None
    """Task teacher of every run (a curriculum): alp_gmm, covar_gmm, riac or random (needs
    --task_space); the space may search its settings as teacher.<setting>."""
    task_space: str | None = None
    """Task space of the teacher, e.g. pendulum_dynamics."""
    teacher_kwargs: str = "{}"
    """JSON object of teacher settings fixed for every run, e.g. '{"fit_rate": 150}'."""
    snapshots: str | None = None
    """Snapshot bank (accelrl-snapshot) every run starts episodes from (S3RL); the space may
    search snapshot.<setting> (snapshot.probability, snapshot.horizon, ...)."""
    snapshot_kwargs: str = "{}"
    """JSON object of snapshot-start settings fixed for every run, e.g. '{"horizon": 50}'."""
    curriculum: str = "{}"
    """JSON object of a teacher run's measurements (test_tasks, test_seed, episodes_per_task):
    the fixed test set --score mastered uses."""
    score: Literal["return", "mastered"] = "return"
    """What a trial is scored by: the return, or (teacher runs) the fraction of the fixed test
    set of tasks mastered at the end."""
    bootstrap_reps: int = 50_000
    """Bootstrap replicates of the report's intervals."""
    quiet: bool = False
    """No progress lines."""


RESUME_FLAGS = ("resume", "trials", "quiet")
"""What ``--resume`` accepts: the study's search.json fixes everything else."""


def _given(argv: list[str]) -> list[str]:
    """The flag names given in ``argv`` (underscore spelling)."""
    return [t[2:].split("=", 1)[0].replace("-", "_") for t in argv if t.startswith("--")]


def _from_search_file(folder: Path, trials: int | None) -> dict[str, Any]:
    """The study in ``folder``: its method, the tuner's settings and the study spec, all read
    from its ``search.json`` (``trials`` may extend it)."""
    from accelrl.autotune.spaces import from_configspace_json
    from accelrl.autotune.tuners import tuner

    path = folder / "search.json"
    if not path.exists():
        raise UsageError(f"{folder} holds no study (no search.json); start one with --out")
    try:
        s = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(s, dict):
        raise UsageError(f"{path} is damaged (not a JSON object)")
    from accelrl.autotune.tuners import upgrade_record

    try:
        s = upgrade_record(s)  # a study started before search.json held a run spec
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None
    missing = [k for k in ("method", "run", "space", "trials", "tuning_seeds", "test_seeds")
               if k not in s]  # fmt: skip
    if missing:
        raise UsageError(f"{path} is damaged (no {', '.join(missing)})")
    if trials is not None and trials < int(s["trials"]):
        raise UsageError(
            f"--trials {trials} is below the study's {s['trials']}; a resume can only extend it"
        )
    if s["method"].startswith("ray_"):
        raise UsageError(f"{folder} is a Ray Tune study; those do not resume (start a new one)")
    if trials is not None:
        s["trials"] = int(trials)
    entry = tuner(s["method"])
    space = from_configspace_json(json.dumps(s["space"]), source=str(path))
    return {
        "method": s["method"],
        "settings": entry.recorded(entry.from_record(s)),
        "spec": {**s, "space": space},
        "out": folder,
    }


def _from_args(a: TuneOptions) -> dict[str, Any]:
    from accelrl.autotune.spaces import default_space, read_space

    base = _base_run(a)
    env = a.env or (base.env if base else None)
    agent = a.agent or (base.agent if base else None)
    budget = a.budget
    if budget is None and base is not None:
        budget = base.config.get("total_timesteps")
    for flag, value in (("--env", env), ("--agent", agent), ("--out", a.out),
                        ("--budget", budget), ("--trials", a.trials)):  # fmt: skip
        if value is None:
            raise UsageError(f"missing {flag} (or use --resume DIR)")
    for problem in (check_env_id(env), check_agent(agent)):
        if problem:
            raise UsageError(problem)
    if budget < 1 or a.trials < 1:
        raise UsageError(f"--budget and --trials must be >= 1, got {budget} and {a.trials}")
    for flag, value in (("--score_updates", a.score_updates), ("--eval_episodes", a.eval_episodes),
                        ("--max_members", a.max_members), ("--bootstrap_reps", a.bootstrap_reps),
                        ("--eta", a.eta), ("--brackets", a.brackets),
                        ("--intervals", a.intervals), ("--batch", a.batch)):  # fmt: skip
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    from accelrl.agents.spec import check_seeds

    for flag, seeds in (("--tuning_seeds", a.tuning_seeds), ("--test_seeds", a.test_seeds)):
        try:
            check_seeds(seeds)
        except ValueError as e:
            raise UsageError(f"{flag}: {e}") from None
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    strategy = _run_strategy(a)
    space = read_space(a.space) if a.space else None
    searched: set[str] = set(space) if space is not None else set()
    if base is not None and space is None:
        try:
            searched = set(default_space(agent))
        except ValueError as e:  # no default space: the study refuses it with this line
            raise UsageError(str(e)) from None
    run = _study_run(a, base, env, agent, budget, strategy, searched)
    spec: dict[str, Any] = {
        "run": run,
        "space": space,
        "tuning_seeds": a.tuning_seeds,
        "test_seeds": a.test_seeds,
        "score": strategy.get("score", "return"),
        "score_updates": a.score_updates,
        "eval_episodes": a.eval_episodes,
        "bootstrap_reps": a.bootstrap_reps,
    }
    kw: dict[str, Any] = {"method": a.method, "spec": spec, "out": out}
    if a.backend == "ray":
        if run.reset_strategy.name != "default" or run.curriculum or spec["score"] != "return":
            raise UsageError(
                "--backend ray tunes runs with the default resets and the return score; drop "
                "--teacher/--snapshots/--score or use --backend local"
            )
        if a.method not in ("hyperband", "sha", "pbt"):
            raise UsageError(
                f"--backend ray runs Ray's ASHA (--method hyperband or sha) or PBT (--method "
                f"pbt), not --method {a.method}"
            )
        kw["method"] = "ray_pbt" if a.method == "pbt" else "ray_asha"
        kw["settings"] = {"trials": a.trials, "seed": a.seed}
        if a.num_cpus is not None:
            kw["settings"]["num_cpus"] = a.num_cpus
        return kw
    settings: dict[str, Any] = {"trials": a.trials, "seed": a.seed}
    if a.method in ("hyperband", "sha"):
        kw["method"] = "hyperband"
        settings.update(eta=a.eta, brackets=a.brackets, successive_halving=a.method == "sha")
    elif a.method == "pbt":
        if a.burn_in < 0:
            raise UsageError(f"--burn_in must be >= 0, got {a.burn_in}")
        settings.update(intervals=a.intervals, burn_in=a.burn_in)
    elif a.method == "tpe":
        settings.update(batch=a.batch, storage=a.storage)
    if a.max_members is not None and a.method != "pbt":
        spec["max_members"] = a.max_members
    kw["settings"] = settings
    return kw


def _run_strategy(a: TuneOptions) -> dict[str, Any]:
    """The reset strategy, measurements and score the flags give (empty for a plain run)."""
    if a.teacher is not None and a.snapshots is not None:
        raise UsageError("--teacher and --snapshots are two reset strategies; choose one")
    out: dict[str, Any] = {}
    if a.teacher is not None:
        if a.task_space is None:
            raise UsageError("--teacher needs --task_space (e.g. pendulum_dynamics)")
        settings = json_object(a.teacher_kwargs, "--teacher_kwargs", '{"fit_rate": 150}')
        out["reset_strategy"] = {
            "name": a.teacher,
            "settings": {"task_space": a.task_space, **settings},
        }
    elif a.task_space is not None:
        raise UsageError("--task_space needs --teacher")
    elif a.snapshots is not None:
        settings = json_object(a.snapshot_kwargs, "--snapshot_kwargs", '{"horizon": 50}')
        out["reset_strategy"] = {"name": "snapshot", "settings": {"bank": a.snapshots, **settings}}
    curriculum = json_object(a.curriculum, "--curriculum", '{"test_tasks": 50}')
    if curriculum:
        out["curriculum"] = curriculum
    if a.score != "return":
        out["score"] = a.score
    return out


def _base_run(a: TuneOptions) -> Any:
    """The run spec ``--config`` names (None without it)."""
    if a.config is None:
        return None
    from accelrl.agents.spec import RunSpec

    try:
        base = RunSpec.from_file(a.config)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"--config: {e}") from None
    if base.grid:
        raise UsageError(
            f"--config {a.config} has an hparams grid; a study chooses the hparams itself "
            "(give the grid's dimensions to --space)"
        )
    return base


def _study_run(
    a: TuneOptions,
    base: Any,
    env: str,
    agent: str,
    budget: int,
    strategy: dict[str, Any],
    searched: Any,
) -> Any:
    """The run every trial trains: ``--config``'s spec (if given; less the fields the space
    ``searched`` names) with the flags on top."""
    import dataclasses as dc

    from accelrl.agents.build import make_spec
    from accelrl.agents.spec import StrategySpec

    fixed: dict[str, Any] = {}
    if base is not None and (base.env, base.agent) == (env, agent):
        # the spec's values of the fields the space searches are the trials' to choose (a
        # run folder's spec lists every field, the searched ones too)
        fixed = {k: v for k, v in {**base.config, **base.hparams}.items() if k not in searched}
    fixed.update(json_object(a.overrides, "--overrides", '{"num_envs": 16}'))
    fixed["total_timesteps"] = int(budget)
    env_kwargs = dict(base.env_kwargs) if base is not None and base.env == env else {}
    env_kwargs.update(json_object(a.env_kwargs, "--env_kwargs", '{"num_actions": 5}'))
    reset = strategy.get("reset_strategy")
    curriculum = strategy.get("curriculum")
    if base is not None and reset is None:
        reset = dc.asdict(base.reset_strategy)
        curriculum = curriculum or base.curriculum
    reset = reset or {"name": "default"}
    from accelrl.envs.strategies import strategy as strategy_entry

    try:
        entry = strategy_entry(reset["name"])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if strategy.get("curriculum") and entry.prefix != "teacher":
        raise UsageError("--curriculum needs --teacher (it sets the teacher's test set)")
    score = strategy.get("score", "return")
    if score != "return" and score not in entry.scores:
        raise UsageError(f"--score {score} needs --teacher (a curriculum run)")
    try:
        return make_spec(
            env, agent, fixed, env_kwargs=env_kwargs,
            reset_strategy=StrategySpec(**reset), curriculum=curriculum,
        )  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from None


def run_tuner(kw: dict[str, Any], log: Any) -> Any:
    """Run the tuner ``kw["method"]`` names: its settings (``search.json``'s keys: PBT's
    population as ``trials``), the study spec and the study folder ``kw["out"]``."""
    from accelrl.autotune.tuners import StudySpec, tuner

    method, recorded, out = kw["method"], dict(kw["settings"]), kw["out"]
    spec_kw = dict(kw["spec"])
    if method.startswith("ray_"):
        recorded["scheduler"] = method[4:]
    entry = tuner(method)
    try:
        settings = entry.from_record(recorded)
        spec = StudySpec.from_record(spec_kw, spec_kw.pop("space"), log=log)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return entry.run(settings, spec, out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)

    def body() -> int:
        a = parse(TuneOptions, argv, PROG)
        if a.resume:
            extra = [f"--{n}" for n in _given(argv) if n not in RESUME_FLAGS]
            if extra:
                raise UsageError(
                    f"--resume takes the study folder (and --trials, --quiet) only; its "
                    f"search.json fixes {', '.join(extra)}"
                )
            kw = _from_search_file(Path(a.resume), a.trials)
        else:
            if a.env is None and a.agent is None and a.out is None:
                raise UsageError(
                    f"missing --env, --agent, --out, --budget, --trials (or --resume DIR); "
                    f"agents: {', '.join(AGENT_NAMES)}; see {PROG} --help"
                )
            kw = _from_args(a)
        log = (lambda _line: None) if a.quiet else (lambda line: print(line, flush=True))
        result = run_tuner(kw, log)
        print((Path(result.out) / "report.md").read_text())
        return 0

    return main_wrapper(PROG, body)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
