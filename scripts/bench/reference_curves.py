"""Reference learning curves of the default agents, generated from raw results files.

Two parts (``--parts``), each with its raw results file and page block:

* ``ppo``: PPO with its registered defaults on CartPole-v1 (seeds 0-2), Pendulum-v1 (0-1),
  MallocGame-v0 (0-2, 200k steps) and ThreeBody-v0 (0-2, 61,440 steps), each trained exactly as
  ``accelrl-train --env ID --agent ppo --seeds ...`` does (``accelrl.agents.train_run`` into a
  temporary folder: deterministic evaluation on keys training never used). Recorded: per-seed
  evaluation returns (every episode), the training-return curve (mean over seeds per update),
  wall and CPU seconds. Block ``reference_curves_ppo`` of ``docs/agents.md``; the learning-curve
  plots ``docs/agents_ppo_<name>.png`` are copied from the run folders.
* ``sac``: SAC with its registered Pendulum-v1 defaults (rl-zoo's), seed 0, evaluated
  (deterministic, 10 episodes, ``evaluation_key(0)`` folded with the step) at 1k-5k, 10k and
  20k environment steps. Block ``reference_curve_sac`` of ``docs/sac.md``.

* ``marl``: IPPO and MAPPO with the MPE defaults at half their budget (200k joint steps, seeds
  0-1, 64 evaluation episodes per seed) on simple_spread, speaker_listener and (IPPO)
  simple_tag, trained as ``accelrl-train --env ID --agent AGENT --seeds 0 1 --total_timesteps
  200000 --eval_episodes 64`` trains them, next to the uniform random policy (1000 episodes;
  team returns where a scenario has two teams). Block ``reference_marl`` of ``docs/marl.md``.

Returns do not depend on the machine's load (CPU runs are deterministic from a seed); the wall
times do. Results protocol: ``docs/results/reference_curves_<part>.json`` (command, commit,
tree state, machine, load); ``--from_results PATH`` re-renders a block from the file alone; a
tree with uncommitted changes is refused unless ``--allow_dirty``; ``--quick`` (tiny budgets)
writes under ``/tmp`` only.

    python scripts/bench/reference_curves.py                  # both parts (~10-20 min)
    python scripts/bench/reference_curves.py --parts ppo
    python scripts/bench/reference_curves.py --quick
    python scripts/bench/reference_curves.py --from_results docs/results/reference_curves_ppo.json
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import add_results_options, render_from_results, results_record, write_blocks

GENERATOR = "scripts/bench/reference_curves.py"
PARTS = ("ppo", "sac", "marl")
PAGES = {"ppo": "docs/agents.md", "sac": "docs/sac.md", "marl": "docs/marl.md"}
BLOCKS = {"ppo": "reference_curves_ppo", "sac": "reference_curve_sac", "marl": "reference_marl"}

PPO_RUNS: dict[str, dict] = {
    "cartpole": {"env": "CartPole-v1", "seeds": (0, 1, 2), "config": {}, "reach": 500.0},
    "pendulum": {"env": "Pendulum-v1", "seeds": (0, 1), "config": {}, "reach": -200.0},
    "malloc": {
        "env": "MallocGame-v0",
        "seeds": (0, 1, 2),
        "config": {"total_timesteps": 200_000},
        "reach": None,
    },
    "three_body": {
        "env": "ThreeBody-v0",
        "seeds": (0, 1, 2),
        "config": {"total_timesteps": 61_440},
        "reach": None,
    },
}
"""The PPO reference runs: env, seeds, config overrides, and the training return whose first
crossing is reported (None: none)."""

SAC_RUN = {"env": "Pendulum-v1", "seed": 0, "eval_at": (1000, 2000, 3000, 4000, 5000, 10_000,
                                                         20_000), "episodes": 10}  # fmt: skip
"""The SAC reference curve: evaluation points (environment steps) and episodes per point."""


MARL_RUNS: dict[str, dict] = {
    "spread_ippo": {"env": "MPE_simple_spread_v3", "agent": "ippo"},
    "spread_mappo": {"env": "MPE_simple_spread_v3", "agent": "mappo"},
    "speaker_listener_ippo": {"env": "MPE_simple_speaker_listener_v4", "agent": "ippo"},
    "speaker_listener_mappo": {"env": "MPE_simple_speaker_listener_v4", "agent": "mappo"},
    "tag_ippo": {"env": "MPE_simple_tag_v3", "agent": "ippo"},
}
MARL_SETTINGS = {"seeds": (0, 1), "total_timesteps": 200_000, "eval_episodes": 64,
                 "random_episodes": 1000}  # fmt: skip
"""The MARL reference runs (half the MPE defaults' 400k budget) and the random baseline."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--runs", nargs="+", default=list(PPO_RUNS), choices=list(PPO_RUNS),
                   help="ppo part: which runs (default all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny budgets; never writes docs/")
    p.add_argument("--out_dir", type=Path, default=None,
                   help="default docs/results (also renders the blocks); quick: /tmp/...")  # fmt: skip
    add_results_options(p)
    return p.parse_args(argv)


def first_crossing(steps: list[float], curve: list[float], level: float | None) -> float | None:
    """The first environment step at which ``curve`` (training return per update) is at or
    above ``level`` (None: never, or no level)."""
    if level is None:
        return None
    for s, v in zip(steps, curve, strict=True):
        if math.isfinite(v) and v >= level:
            return s
    return None


def run_ppo(name: str, quick: bool, tmp: Path) -> dict:
    """One PPO reference run, trained as ``accelrl-train`` trains it."""
    import numpy as np

    from accelrl.agents.runs import train_run
    from accelrl.agents.spec import RunSpec

    spec = PPO_RUNS[name]
    config = {**spec["config"], **({"total_timesteps": 4096} if quick else {})}
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = train_run(
        RunSpec(env=spec["env"], agent="ppo", seeds=spec["seeds"], config=config),
        tmp / name,
        progress=False,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    metrics = outcome.result.metrics
    returns = np.asarray(metrics["episode_return"], np.float64)  # [S, U]
    steps = np.asarray(metrics["env_steps"], np.float64).reshape(returns.shape)[0]
    summary = outcome.summary
    cfg = outcome.built.config
    return {
        "env": spec["env"],
        "agent": "ppo",
        "seeds": list(spec["seeds"]),
        "config_overrides": config,
        "total_timesteps": int(cfg.total_timesteps),
        "command": f"accelrl-train --env {spec['env']} --agent ppo --seeds "
        + " ".join(str(s) for s in spec["seeds"])
        + "".join(f" --{k} {v}" for k, v in config.items()),
        "eval_returns": summary["returns"],
        "eval_mean_return": summary["mean_return"],
        "eval_episode_returns": summary["episode_returns"],
        "train_steps": steps.tolist(),
        "train_curve": np.nanmean(returns, axis=0).tolist(),
        "reach": spec["reach"],
        "wall_s": wall,
        "cpu_s": cpu,
        "plot": str(outcome.out / "learning_curve.png"),  # popped: a temporary file
    }


def run_sac(quick: bool) -> dict:
    """SAC on Pendulum-v1, evaluated at the fixed step counts."""
    import jax
    import numpy as np

    from accelrl.agents import build
    from accelrl.agents.evaluation import evaluation_key, training_key

    eval_at = (200, 400) if quick else SAC_RUN["eval_at"]
    agent, config, hp = build(SAC_RUN["env"], "sac", {"total_timesteps": eval_at[-1]})
    run = jax.jit(agent.run, static_argnums=2)
    t0, c0 = time.perf_counter(), time.process_time()
    state, done, points = agent.init(training_key(SAC_RUN["seed"]), hp), 0, []
    for steps in eval_at:
        n = (steps - done) // agent.steps_per_update
        state, _ = run(state, hp, n)
        done += n * agent.steps_per_update
        key = jax.random.fold_in(evaluation_key(SAC_RUN["seed"]), done)
        returns = np.asarray(agent.evaluate(state, key, SAC_RUN["episodes"]), np.float64)
        points.append({"env_steps": done, "mean_return": float(returns.mean()),
                       "returns": returns.tolist()})  # fmt: skip
    return {
        "env": SAC_RUN["env"],
        "agent": "sac",
        "seed": SAC_RUN["seed"],
        "episodes": SAC_RUN["episodes"],
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "points": points,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def run_marl(name: str, quick: bool, tmp: Path) -> dict:
    """One MARL reference run, trained as ``accelrl-train`` trains it."""
    from accelrl.agents.runs import train_run
    from accelrl.agents.spec import RunSpec

    spec, m = MARL_RUNS[name], MARL_SETTINGS
    steps = 3200 if quick else m["total_timesteps"]
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = train_run(
        RunSpec(env=spec["env"], agent=spec["agent"], seeds=m["seeds"],
                config={"total_timesteps": steps}),
        tmp / name,
        progress=False,
        eval_episodes=m["eval_episodes"],
    )  # fmt: skip
    summary = outcome.summary
    return {
        "env": spec["env"],
        "agent": spec["agent"],
        "seeds": list(m["seeds"]),
        "total_timesteps": steps,
        "command": f"accelrl-train --env {spec['env']} --agent {spec['agent']} --seeds "
        + " ".join(map(str, m["seeds"]))
        + f" --total_timesteps {steps} --eval_episodes {m['eval_episodes']}",
        "eval_mean_return": summary["mean_return"],
        "eval_returns": summary["returns"],
        "team_returns": summary.get("team_returns"),
        "agent_returns": summary.get("agent_returns"),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def random_returns(env_id: str, episodes: int) -> dict:
    """The uniform random policy's mean return (mean over agents) and team returns."""
    import jax
    import numpy as np

    from accelrl.agents.evaluation import (
        evaluate_policy_episodes,
        evaluation_key,
        max_episode_steps,
        uniform_policy,
    )
    from accelrl.envs import make

    env, params = make(env_id)
    records = jax.jit(
        lambda k: evaluate_policy_episodes(
            env, params, uniform_policy(env, params), k, episodes, max_episode_steps(params)
        )
    )(evaluation_key(0))
    by_agent = {a: float(np.mean(records[f"return/{a}"])) for a in env.agents}
    teams = getattr(env, "teams", None) or {"agents": tuple(env.agents)}
    return {
        "episodes": episodes,
        "mean_return": float(np.mean(records["return"])),
        "team_returns": {t: float(np.mean([by_agent[a] for a in ag])) for t, ag in teams.items()},
    }


def _load(record: dict) -> str:
    host = record["host"]
    return (
        f"{host['cpus']} CPUs, load average {host['load_start'][0]:.1f} at the start and "
        f"{host['load_end'][0]:.1f} at the end"
    )


def render_ppo(record: dict) -> str:
    """The PPO reference runs' block (markdown) from its results record (pure)."""
    from accelrl.results import provenance_line

    lines = [
        f"Measured by `{record['command']}` ({_load(record)}; the returns do not depend on the "
        "load, the wall times do). Evaluation: deterministic, on keys training never used.",
    ]
    for r in record["runs"].values():
        per_seed = ", ".join(f"{x:.4g}" for x in r["eval_returns"])
        medians = [statistics.median(e) for e in r["eval_episode_returns"]]
        n_episodes = len(r["eval_episode_returns"][0])
        crossing = first_crossing(r["train_steps"], r["train_curve"], r["reach"])
        curve = r["train_curve"]
        idx = [round(i * (len(curve) - 1) / 4) for i in range(5)]
        text = (
            f"**{r['env']}, PPO, seeds {' '.join(map(str, r['seeds']))}, "
            f"{r['total_timesteps']:,} steps per seed** — `{r['command']}`: evaluation return "
            f"{r['eval_mean_return']:.4g} (per seed {per_seed}; {n_episodes} episodes each; "
            f"median episode per seed {', '.join(f'{m:.4g}' for m in medians)}). Training "
            "return (mean over seeds) at 0, 25, 50, 75 and 100% of the updates: "
            + ", ".join(f"{curve[i]:.4g}" for i in idx)
        )
        if r["reach"] is not None:
            text += (
                f"; it first reaches {r['reach']:g} at {crossing:,.0f} steps"
                if crossing is not None
                else f"; it never reaches {r['reach']:g}"
            )
        text += f". {r['wall_s']:.0f} s wall / {r['cpu_s']:.0f} s CPU (compile, train, evaluate)."
        lines += ["", text]
    lines += ["", provenance_line(record)]
    return "\n".join(lines)


def render_sac(record: dict) -> str:
    """The SAC reference curve's block (markdown) from its results record (pure)."""
    from accelrl.results import provenance_line

    r = record["run"]
    points = r["points"]
    lines = [
        f"`{record['command']}`: {r['env']}, `classic_continuous` defaults, seed {r['seed']}, "
        f"deterministic evaluation over {r['episodes']} episodes at each point "
        f"({r['wall_s']:.0f} s wall / {r['cpu_s']:.0f} s CPU for training and evaluations; "
        f"{_load(record)}).",
        "",
        "| env steps | " + " | ".join(f"{p['env_steps'] / 1000:g}k" for p in points) + " |",
        "|---|" + "---|" * len(points),
        "| deterministic eval return | "
        + " | ".join(f"{p['mean_return']:.0f}" for p in points)
        + " |",
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def _teams(returns: dict | None) -> str:
    if not returns or len(returns) < 2:
        return ""
    return " / ".join(f"{v:.1f}" for v in returns.values())


def render_marl(record: dict) -> str:
    """The MARL reference runs' block (markdown) from its results record (pure)."""
    from accelrl.results import provenance_line

    runs, random = record["runs"], record["random"]
    lines = [
        f"`{record['command']}` ({_load(record)}; the returns do not depend on the load, the "
        "wall times do). Evaluation: deterministic, on keys training never used; returns are "
        "the mean over agents of each agent's episode return, and where a scenario has two "
        "teams the team returns follow (" + ", ".join(
            f"{r['env']}: {' / '.join(r['team_returns'])}"
            for r in runs.values() if r.get("team_returns") and len(r["team_returns"]) > 1
        ) + ").",
        "",
        "| env | agent | command | eval return (mean of seeds; per seed) | teams | uniform "
        "random (teams) | wall s (train + compile + eval) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in runs.values():
        rnd = random[r["env"]]
        per_seed = ", ".join(f"{x:.1f}" for x in r["eval_returns"])
        rnd_teams = _teams(rnd["team_returns"])
        lines.append(
            f"| {r['env']} | {r['agent']} | `{r['command']}` | {r['eval_mean_return']:.1f} "
            f"({per_seed}) | {_teams(r['team_returns']) or '-'} | {rnd['mean_return']:.1f}"
            f"{f' ({rnd_teams})' if rnd_teams else ''} | {r['wall_s']:.0f} |"
        )
    lines += [
        "",
        f"The random policy: {next(iter(random.values()))['episodes']} episodes per scenario "
        "(`agents.evaluation.uniform_policy`), same return convention.",
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def render(record: dict) -> dict[str, str]:
    """``{block name: markdown}`` of one part's results record."""
    part = record.get("part")
    if part not in PARTS:
        raise ValueError(f"a reference_curves record names its part ({PARTS}), got {part!r}")
    body = {"ppo": render_ppo, "sac": render_sac, "marl": render_marl}[part](record)
    return {BLOCKS[part]: body}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return {}
    from accelrl.results import REPO, check_output, write_results

    docs = REPO / "docs" / "results"
    out_dir = args.out_dir or (Path("/tmp/reference_curves") if args.quick else docs)
    check_output(out_dir, args.quick)
    allow_dirty = args.allow_dirty or args.quick
    base = results_record(["python", GENERATOR, *argv], GENERATOR, PAGES[args.parts[0]])
    if base["clean_tree"] is False and not allow_dirty:
        raise SystemExit("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    to_docs = Path(out_dir).resolve() == docs.resolve()
    records = {}
    with tempfile.TemporaryDirectory(prefix="reference_curves_") as tmp:
        for part in args.parts:
            record = {**base, "page": PAGES[part], "part": part, "quick": args.quick,
                      "host": {"cpus": os.cpu_count(), "load_start": os.getloadavg()}}  # fmt: skip
            if part == "ppo":
                record["runs"], plots = {}, {}
                for name in args.runs:
                    print(f"training {name} ...", flush=True)
                    record["runs"][name] = run_ppo(name, args.quick, Path(tmp))
                    plots[name] = record["runs"][name].pop("plot")
            elif part == "sac":
                print("training SAC ...", flush=True)
                record["run"] = run_sac(args.quick)
            else:
                record["runs"], record["random"] = {}, {}
                for name in MARL_RUNS:
                    print(f"training {name} ...", flush=True)
                    run = record["runs"][name] = run_marl(name, args.quick, Path(tmp))
                    if run["env"] not in record["random"]:
                        episodes = 64 if args.quick else MARL_SETTINGS["random_episodes"]
                        record["random"][run["env"]] = random_returns(run["env"], episodes)
            record["host"]["load_end"] = os.getloadavg()
            path = write_results(out_dir / f"reference_curves_{part}.json", record, allow_dirty)
            blocks = render(record)
            print("\n".join(blocks.values()), flush=True)
            print(f"wrote {path}")
            if to_docs:
                write_blocks(REPO / PAGES[part], blocks)
                for name, plot in (plots if part == "ppo" else {}).items():
                    shutil.copyfile(plot, REPO / "docs" / f"agents_ppo_{name}.png")
                print(f"rendered {PAGES[part]}")
            records[part] = record
    return records


if __name__ == "__main__":
    main()
