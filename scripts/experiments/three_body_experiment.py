"""Learned time-step controllers against every fixed mu on ThreeBody-v0 (the paper's protocol).

Trains PPO (ThreeBody-v0), SAC (ThreeBodyContinuous-v0) and DQN, the paper's agent, through
``accelrl-train`` (in this process, one run folder per policy, all seeds in one vmapped
program), under the fast default formulation (substep cap C = 32) and under the paper's
(``preset="paper"``: one decision per check time). Every policy and every fixed mu is then
evaluated on the initial conditions ``reset_env(PRNGKey(i))``, i = 0 .. 99, for 300 check times
(30 yr), exactly as ``scripts/experiments/three_body_baselines.py`` does: final |dE| and total Hermite
substeps (the compute) per system, the greedy (deterministic) policy of every seed.

Protocol (DESIGN.md, Results protocol): the policies' settings were chosen on the evaluation
systems 0-99 (the validation split, the runs before the protocol); the reported run evaluates
on new systems ``system0 .. system0 + num_systems - 1`` (default 1000-1099, named on the page
before the run). "Dominates" comes from paired bootstrap intervals over systems (the same
initial condition under the controller and under a fixed mu) of the mean difference in
log10 final |dE| and in log10 total substeps, the controller's value per system being the mean
over its training seeds: a controller dominates a fixed mu when both intervals lie below zero,
and is dominated when both lie above.

The full run writes the raw results file ``docs/results/three_body_experiment.json`` (refused
from a tree with uncommitted changes unless ``--allow_dirty``), the generated block of
``docs/three_body_experiment.md`` (the commands, budgets and wall times, the table with one row
per fixed mu and per learned policy, the paired comparisons) and the plot of error against
compute. ``--quick`` writes only under ``--out``.

Usage::

    python scripts/experiments/three_body_experiment.py            # full: ~1.5 h on 2 CPU cores
    python scripts/experiments/three_body_experiment.py --quick    # minutes: tiny budgets
    python scripts/experiments/three_body_experiment.py --policies dqn_paper --retrain
    python scripts/experiments/three_body_experiment.py \
        --from_results docs/results/three_body_experiment.json     # the page's block again

Run folders already holding a finished run (``eval.json``) are reused unless ``--retrain``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import tyro
from three_body_baselines import evaluate, evaluate_fixed, make_evaluator

from accelrl.envs import three_body as tb
from accelrl.results import (
    DirtyTreeError,
    block_markers,
    check_output,
    paired_bootstrap,
    provenance_line,
    regenerate,
    replace_block,
    results_record,
    target_line,
    verdict,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/experiments/three_body_experiment.py"
PAGE = "docs/three_body_experiment.md"
RESULTS = ROOT / "docs" / "results" / "three_body_experiment.json"
BLOCK = "three_body_experiment"
"""The page's generated block (``<!-- three_body_experiment: begin/end -->``)."""
VALIDATION_SYSTEMS = (0, 100)
"""Evaluation systems ``[start, stop)`` the policies' settings were chosen on."""
TEST_SYSTEM0 = 1000
"""First evaluation system of the reported run (named on the page before the run)."""


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """One learned policy: what ``accelrl-train`` runs to produce it."""

    name: str
    """Row label and run-folder name."""
    env: str
    """Environment id."""
    agent: str
    """Agent name."""
    preset: str
    """ThreeBody preset (``"default"``: C = 32; ``"paper"``: the paper's formulation)."""
    options: tuple[str, ...] = ()
    """Further ``accelrl-train`` options (budget, network, params variant)."""


# Full budgets, chosen for ~1 h on the 2 shared CPU cores (measurements in the doc).
FULL_POLICIES: tuple[PolicySpec, ...] = (
    PolicySpec("dqn", "ThreeBody-v0", "dqn", "default", ("--total_timesteps", "300000")),
    PolicySpec(
        "sac",
        "ThreeBodyContinuous-v0",
        "sac",
        "scaled",
        (
            "--total_timesteps", "200000", "--num_envs", "16", "--gradient_steps", "4",
            "--batch_size", "128", "--learning_starts", "5000", "--normalize_obs",
            "--actor_hidden_sizes", "64", "64", "--critic_hidden_sizes", "64", "64",
        ),
    ),
    PolicySpec("ppo", "ThreeBody-v0", "ppo", "default", ("--total_timesteps", "1000000")),
    PolicySpec("ppo_steady", "ThreeBody-v0", "ppo", "steady", ("--total_timesteps", "1000000")),
    PolicySpec(
        "dqn_paper",
        "ThreeBody-v0",
        "dqn",
        "paper",
        ("--total_timesteps", "30000", "--learning_starts", "1000"),
    ),
)  # fmt: skip

# --quick: a few updates each, only to exercise every path.
QUICK_POLICIES: tuple[PolicySpec, ...] = (
    PolicySpec(
        "ppo",
        "ThreeBody-v0",
        "ppo",
        "default",
        ("--total_timesteps", "256", "--num_envs", "4", "--num_steps", "32",
         "--num_minibatches", "2", "--hidden_sizes", "16", "16", "--eval_episodes", "2"),
    ),
    PolicySpec(
        "sac",
        "ThreeBodyContinuous-v0",
        "sac",
        "default",
        ("--total_timesteps", "256", "--num_envs", "4", "--learning_starts", "64",
         "--batch_size", "16", "--actor_hidden_sizes", "16", "--critic_hidden_sizes", "16",
         "--eval_episodes", "2"),
    ),
    PolicySpec(
        "dqn_paper",
        "ThreeBody-v0",
        "dqn",
        "paper",
        ("--total_timesteps", "256", "--num_envs", "4", "--learning_starts", "64",
         "--batch_size", "16", "--hidden_sizes", "16", "--eval_episodes", "2"),
    ),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Args:
    """Command-line options."""

    out: str = "runs/three_body_experiment"
    """Folder of the run folders (one per policy), the baselines cache and results.json."""
    doc: str | None = None
    """Markdown file to write (default: docs/three_body_experiment.md; --quick: in --out)."""
    system0: int = TEST_SYSTEM0
    """First evaluation initial condition (``reset_env(PRNGKey(system0 + i))``); 0 gives the
    validation systems."""
    allow_dirty: bool = False
    """Write the raw results file from a tree with uncommitted changes (the page says so)."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Training seeds of every policy (all in one vmapped program)."""
    num_systems: int = 100
    """Evaluation initial conditions: seeds system0 .. system0 + num_systems - 1."""
    num_checks: int = 300
    """Check times per evaluation episode (300 = the paper's 30 yr)."""
    policies: tuple[str, ...] = ()
    """Learned policies to train/evaluate, by name (default: all)."""
    retrain: bool = False
    """Train again even where a finished run folder exists."""
    quick: bool = False
    """Smoke run: seeds 0 1, 8 systems, 20 check times, tiny training budgets."""


def mu_label(mu: float) -> str:
    """``mu = 1e-04``, ``mu = 2.15e-04``: the row label of a fixed mu."""
    text = f"{mu:.2e}".replace(".00e", "e")
    return f"mu = {text}"


# ---------------------------------------------------------------------------------------------
# Training (the library's train_run; the equivalent accelrl-train command is recorded)


def train_argv(spec: PolicySpec, run_dir: Path, seeds: tuple[int, ...]) -> list[str]:
    """The ``accelrl-train`` arguments that produce ``spec``'s run folder."""
    return [
        "--env", spec.env, "--agent", spec.agent, "--out", str(run_dir),
        "--seeds", *map(str, seeds), "--env_kwargs", json.dumps({"preset": spec.preset}),
        "--segments", "5", "--no-progress", *spec.options,
    ]  # fmt: skip


def policy_spec(spec: PolicySpec, seeds: tuple[int, ...]) -> Any:
    """The :class:`accelrl.agents.RunSpec` of ``spec`` (what ``train_argv`` says on a command
    line): its options read as agent field overrides."""
    from accelrl.agents import RunOptions, make_spec

    overrides: dict[str, Any] = {}
    name, values = None, []
    for token in [*spec.options, "--"]:
        if token.startswith("--"):
            if name is not None:
                overrides[name] = " ".join(values) if values else "true"
            name, values = token[2:], []
        else:
            values.append(token)
    return make_spec(
        spec.env,
        spec.agent,
        overrides,
        seeds=tuple(seeds),
        env_kwargs={"preset": spec.preset},
        run=RunOptions(segments=5),
    )


def train_policy(spec: PolicySpec, run_dir: Path, seeds: tuple[int, ...], retrain: bool) -> dict:
    """Train ``spec`` (unless a finished run is there) with the library
    (:func:`accelrl.agents.train_run`); returns its ``eval.json``, config and the equivalent
    ``accelrl-train`` command."""
    from accelrl.agents import train_run

    command = "accelrl-train " + shlex.join(train_argv(spec, run_dir, seeds))
    done = run_dir / "eval.json"
    if done.exists() and not retrain:
        print(f"[{spec.name}] reusing {run_dir}", flush=True)
    else:
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        print(f"[{spec.name}] {command}", flush=True)
        start = time.perf_counter()
        train_run(policy_spec(spec, seeds), run_dir, progress=False)
        print(f"[{spec.name}] trained in {time.perf_counter() - start:.0f}s", flush=True)
    summary = json.loads(done.read_text())
    meta = json.loads((run_dir / "config.json").read_text())
    return {"command": command, "eval": summary, "config": meta["config"]}


# ---------------------------------------------------------------------------------------------
# Evaluation on the paper's protocol


def eval_params(preset: str, num_checks: int) -> tb.EnvParams:
    """The formulation's params with ``num_checks`` check times and no decision cap (the
    episode ends at the check limit or on termination, as in three_body_baselines)."""
    return tb.ThreeBody(preset=preset).default_params.replace(
        num_checks=num_checks, max_decisions=10**8
    )


def make_policy_evaluator(env: tb.ThreeBody, agent: Any):
    """:func:`three_body_baselines.make_evaluator` with every seed's greedy policy:
    ``policy_args`` are the agent states ``[S]`` and the systems ``[S * N]`` are seed-major.
    Observations are normalised with each seed's frozen training statistics."""
    from accelrl.agents.base import obs_normalizer

    def greedy(agent_state, obs):  # obs [N, 13] -> actions [N, ...]
        norm = obs_normalizer(agent.env, agent_state.env_state)
        return agent.act(agent_state, norm(obs), jax.random.PRNGKey(0), deterministic=True)

    def policy(agent_states, obs):
        num_seeds = jax.tree.leaves(agent_states)[0].shape[0]
        actions = jax.vmap(greedy)(agent_states, obs.reshape(num_seeds, -1, obs.shape[-1]))
        return actions.reshape((obs.shape[0],) + actions.shape[2:])

    return make_evaluator(env, policy)


def evaluate_policy(
    run_dir: Path, preset: str, num_systems: int, num_checks: int, system0: int = 0
) -> dict:
    """Greedy policies of every seed of a run folder on systems system0 .. + num_systems - 1.

    Cached in ``run_dir/protocol_eval_<system0>_<N>x<checks>.json`` (for the run's current
    checkpoint).

    Returns:
        dict of numpy arrays ``[S, num_systems]``: ``energy_error`` (final |dE|), ``substeps``
        (total), ``decisions``, ``checks``, ``terminated``; and ``seconds`` (wall time).
    """
    cache = run_dir / f"protocol_eval_{system0}_{num_systems}x{num_checks}.json"
    checkpoint = json.loads((run_dir / "eval.json").read_text()).get("checkpoint")
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("checkpoint") == checkpoint and saved.get("preset") == preset:
            return {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in saved.items()}
    res = _evaluate_policy(run_dir, preset, num_systems, num_checks, system0)
    plain = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in res.items()}
    cache.write_text(json.dumps({**plain, "checkpoint": checkpoint, "preset": preset}))
    return res


def _evaluate_policy(
    run_dir: Path, preset: str, num_systems: int, num_checks: int, system0: int
) -> dict:
    from accelrl.agents import load_run

    agent, states, _, _ = load_run(run_dir)
    if states is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint")
    env = agent.env.env
    params = eval_params(preset, num_checks).replace(mu_values=agent.eval_params.mu_values)
    num_seeds = jax.tree.leaves(states)[0].shape[0]
    seeds = np.tile(np.arange(system0, system0 + num_systems), num_seeds)  # seed-major
    start = time.perf_counter()
    res = evaluate(env, params, states, seeds, make_policy_evaluator(env, agent))
    seconds = time.perf_counter() - start
    shape = (num_seeds, num_systems)
    return {**{k: v.reshape(shape) for k, v in res.items()}, "seconds": seconds}


def fixed_baselines(out: Path, num_systems: int, num_checks: int, system0: int = 0) -> list[dict]:
    """Every fixed mu on the same systems (cached in ``out``), as three_body_baselines does."""
    cache = out / f"baselines_{system0}_{num_systems}x{num_checks}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    env = tb.ThreeBody()
    params = eval_params("default", num_checks)
    evaluator = make_evaluator(env)
    seeds = np.arange(system0, system0 + num_systems)
    rows = []
    for action in range(env.num_actions):
        mu = float(params.mu_values[action])
        start = time.perf_counter()
        res = evaluate_fixed(env, params, action, seeds, evaluator)
        seconds = time.perf_counter() - start
        print(f"[fixed] {mu_label(mu)}: {seconds:.1f}s", flush=True)
        rows.append(
            {
                "label": mu_label(mu),
                "mu": mu,
                "energy_error": res["energy_error"].tolist(),
                "substeps": res["substeps"].tolist(),
                "decisions": res["checks"].tolist(),
                "terminated": res["terminated"].tolist(),
                "seconds": seconds,
            }
        )
    cache.write_text(json.dumps(rows))
    return rows


# ---------------------------------------------------------------------------------------------
# Summaries, dominance, table and plot


def summarize(label: str, energy_error: Any, substeps: Any, terminated: Any) -> dict:
    """Medians and interquartile ranges of final |dE| and total substeps over all systems."""
    err = np.maximum(np.asarray(energy_error, np.float64).ravel(), 1e-17)
    sub = np.asarray(substeps, np.float64).ravel()
    q = lambda x: [float(v) for v in np.percentile(x, [25, 50, 75])]  # noqa: E731
    return {
        "label": label,
        "dE_quartiles": q(err),
        "substeps_quartiles": q(sub),
        "median_dE": float(np.median(err)),
        "median_substeps": float(np.median(sub)),
        "terminated_frac": float(np.mean(np.asarray(terminated))),
        "n": int(err.size),
    }


DE_FLOOR = 1e-17
"""|dE| below this counts as this (log10 of an exact zero)."""


def per_system(values: Any, floor: float) -> np.ndarray:
    """``f64[N]``: the mean over seeds of ``log10(max(value, floor))`` per system, from
    ``[S, N]`` (a learned policy's seeds) or ``[N]`` (a fixed mu)."""
    v = np.log10(np.maximum(np.asarray(values, np.float64), floor))
    return v.mean(axis=0) if v.ndim == 2 else v


def paired_comparisons(policy: dict, fixed: list[dict]) -> list[dict]:
    """A learned policy against every fixed mu, paired over systems.

    Args:
        policy: ``energy_error`` and ``substeps``, ``[S, N]`` (seeds x systems).
        fixed: rows with ``label``, ``energy_error`` and ``substeps``, ``[N]`` each (the same
            systems in the same order).

    Returns:
        One dict per fixed mu: ``label``, ``dE`` and ``substeps`` (each ``diff``, ``low``,
        ``high``: the mean over systems of policy minus fixed log10 values, with its 95% paired
        bootstrap interval, and ``verdict``, lower is better) and ``relation``:
        ``"dominates"`` (both intervals below zero), ``"dominated"`` (both above) or
        ``"neither"``.

    Raises:
        ValueError: the policy and a fixed mu were evaluated on different numbers of systems.
    """
    p_err = per_system(policy["energy_error"], DE_FLOOR)
    p_sub = per_system(policy["substeps"], 1.0)
    out = []
    for f in fixed:
        cells = {}
        for key, mine, floor in (("dE", p_err, DE_FLOOR), ("substeps", p_sub, 1.0)):
            theirs = per_system(f["energy_error" if key == "dE" else "substeps"], floor)
            if theirs.shape != mine.shape:
                raise ValueError(f"{f['label']}: {theirs.size} systems against {mine.size}")
            d, lo, hi = paired_bootstrap(mine, theirs)
            cells[key] = {"diff": d, "low": lo, "high": hi,
                          "verdict": verdict(lo, hi, higher_is_better=False)}  # fmt: skip
        verdicts = {cells["dE"]["verdict"], cells["substeps"]["verdict"]}
        relation = {frozenset({"beats"}): "dominates", frozenset({"worse"}): "dominated"}.get(
            frozenset(verdicts), "neither"
        )
        out.append({"label": f["label"], **cells, "relation": relation})
    return out


def dominance(comparisons: list[dict]) -> tuple[list[str], list[str]]:
    """``(fixed mu that dominate the policy, fixed mu it dominates)`` from
    :func:`paired_comparisons`."""
    by = [c["label"] for c in comparisons if c["relation"] == "dominated"]
    over = [c["label"] for c in comparisons if c["relation"] == "dominates"]
    return by, over


def target_met(comparisons: list[dict]) -> bool:
    """Dominated by no fixed mu, and dominating at least one (both by paired intervals)."""
    by, over = dominance(comparisons)
    return not by and bool(over)


def _mu_list(labels: list[str]) -> str:
    return ", ".join(label.removeprefix("mu = ") for label in labels) or "-"


def table(fixed: list[dict], learned: list[dict]) -> str:
    """Markdown table: fixed mu rows, then learned policies with their dominance relations."""
    lines = [
        "| policy | median final \\|dE\\| (IQR) | median substeps (IQR) | terminated | "
        "dominated by | dominates | target |",
        "|---|---:|---:|---:|---|---|:---:|",
    ]
    for r in [*fixed, *learned]:
        lo, med, hi = r["dE_quartiles"]
        slo, smed, shi = r["substeps_quartiles"]
        cells = [
            r["label"],
            f"{med:.2e} ({lo:.1e} - {hi:.1e})",
            f"{smed:,.0f} ({slo:,.0f} - {shi:,.0f})",
            f"{r['terminated_frac']:.0%}",
        ]
        if "dominated_by" in r:
            cells += [
                _mu_list(r["dominated_by"]),
                _mu_list(r["dominates"]),
                "met" if r["target_met"] else "not met",
            ]
        else:
            cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(comparisons: dict[str, list[dict]]) -> str:
    """Markdown table of every (learned policy, fixed mu) comparison."""
    lines = [
        "| policy | fixed mu | mean log10 \\|dE\\| difference [95% CI] | mean log10 substeps "
        "difference [95% CI] | relation |",
        "|---|---|---:|---:|---|",
    ]
    for name, comps in comparisons.items():
        for c in comps:
            e, u = c["dE"], c["substeps"]
            lines.append(
                f"| {name} | {c['label'].removeprefix('mu = ')} | {e['diff']:+.2f} "
                f"[{e['low']:+.2f}, {e['high']:+.2f}] | {u['diff']:+.2f} [{u['low']:+.2f}, "
                f"{u['high']:+.2f}] | {c['relation']} |"
            )
    return "\n".join(lines)


def plot(fixed: list[dict], learned: list[dict], path: Path) -> None:
    """Error against compute: one point per policy (medians, interquartile bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    cmap = plt.get_cmap("viridis")

    def point(r, **kw):
        lo, med, hi = r["dE_quartiles"]
        slo, smed, shi = r["substeps_quartiles"]
        ax.errorbar(
            smed, med, xerr=[[smed - slo], [shi - smed]], yerr=[[med - lo], [hi - med]],
            capsize=2, lw=0.8, **kw,
        )  # fmt: skip

    xs = [r["median_substeps"] for r in fixed]
    ys = [r["median_dE"] for r in fixed]
    ax.plot(xs, ys, color="0.6", lw=0.8, zorder=1)
    for i, r in enumerate(fixed):
        point(r, fmt="o", ms=6, color=cmap(i / max(len(fixed) - 1, 1)),
              label=r["label"].removeprefix("mu = ") if i % 3 == 0 else None)  # fmt: skip
    markers = "s^DvP*X"
    colours = plt.get_cmap("tab10")
    for i, r in enumerate(learned):
        point(r, fmt=markers[i % len(markers)], ms=8, color=colours(i + 1), mec="k",
              label=r["label"], zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("total Hermite substeps per episode (median, IQR)")
    ax.set_ylabel("final |dE| (median, IQR)")
    ax.set_title("ThreeBody: learned controllers vs fixed mu (100 systems, 300 checks)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, title="fixed mu (every 3rd labelled) / learned", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# The report


def _formulation(preset: str) -> str:
    return {
        "paper": "paper (one decision per check)",
        "steady": "fast default (C = 32), energy term not / t",
        "scaled": "fast default (C = 32), reward / 100",
    }.get(preset, "fast default (C = 32)")


def summaries(record: dict) -> tuple[list[dict], list[dict], dict[str, list[dict]]]:
    """``(fixed rows, learned rows, comparisons per policy)`` from a raw results record: the
    rows of :func:`summarize`, the learned ones with their paired dominance relations."""
    fixed_raw = record["fixed"]
    fixed = [
        summarize(r["label"], r["energy_error"], r["substeps"], r["terminated"]) for r in fixed_raw
    ]
    learned, comparisons = [], {}
    for name, p in record["policies"].items():
        row = summarize(name, p["energy_error"], p["substeps"], p["terminated"])
        comparisons[name] = comps = paired_comparisons(p, fixed_raw)
        row["dominated_by"], row["dominates"] = dominance(comps)
        row["target_met"] = target_met(comps)
        learned.append(row)
    return fixed, learned, comparisons


def missing_line(record: dict) -> list[str]:
    """``["", "Not run in this record: ..."]`` naming the full run's policies a record lacks
    (``--policies`` picked some), else ``[]``."""
    if record["args"].get("quick"):
        return []
    missing = [s.name for s in FULL_POLICIES if s.name not in record["policies"]]
    if not missing:
        return []
    return ["", "Not run in this record: " + ", ".join(f"`{m}`" for m in missing) + "."]


def render(record: dict) -> str:
    """The page's generated block from a raw results record (no training, no evaluation)."""
    args = record["args"]
    fixed, learned, comparisons = summaries(record)
    first, n = args["system0"], args["num_systems"]
    seeds = " ".join(map(str, args["seeds"]))
    lines = [
        f"Evaluation: initial conditions `reset_env(PRNGKey(i))`, i = {first}..{first + n - 1} "
        f"(the test systems; settings were chosen on systems {VALIDATION_SYSTEMS[0]}.."
        f"{VALIDATION_SYSTEMS[1] - 1}), {args['num_checks']} check times; greedy policy of each "
        f"of the {len(args['seeds'])} training seeds ({seeds}) on every system. Medians and "
        "IQR pool the seeds' episodes. Dominance: paired bootstrap over systems of the mean "
        "difference in log10 final |dE| and in log10 substeps (the policy's value per system: "
        "the mean over its seeds), both intervals below zero (dominates) or both above "
        "(dominated by). Target: dominated by no fixed mu and dominating at least one.",
        *missing_line(record),
        "",
        table(fixed, learned),
        "",
        *[
            target_line(
                f"`{r['label']}` dominates a fixed mu and none dominates it",
                r["target_met"],
                f"dominated by {_mu_list(r['dominated_by'])}; dominates {_mu_list(r['dominates'])}",
            )
            for r in learned
        ],
        "",
        "Paired comparisons (policy minus fixed mu, mean over systems; negative is better):",
        "",
        comparison_table(comparisons),
        "",
        "Per seed (median |dE|, median substeps):",
        "",
    ]
    for name, p in record["policies"].items():
        cells = []
        for s, err, sub, term in zip(
            args["seeds"], p["energy_error"], p["substeps"], p["terminated"], strict=True
        ):
            r = summarize(name, err, sub, term)
            cells.append(f"seed {s}: {r['median_dE']:.1e}, {r['median_substeps']:,.0f}")
        lines.append(f"- `{name}`: " + " / ".join(cells))
    if record.get("plot"):
        lines += ["", f"![error against compute]({record['plot']})"]
    lines += [
        "",
        "Training (`accelrl-train`, every seed in one vmapped program) and evaluation cost:",
        "",
        "| policy | formulation | env steps per seed | train wall s | env steps/s (all seeds) "
        "| mean eval return (training protocol) | eval wall s | mean decisions per episode |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p in record["policies"].items():
        steps, secs = int(p["total_timesteps"]), float(p["train_seconds"])
        lines.append(
            f"| {name} | {_formulation(p['preset'])} | {steps:,} | {secs:,.0f} | "
            f"{steps * len(args['seeds']) / secs:,.0f} | {p['mean_return']:.1f} | "
            f"{p['eval_seconds']:.0f} | {p['mean_decisions']:,.0f} |"
        )
    fixed_s = sum(r["seconds"] for r in record["fixed"])
    work_s = sum(p["train_seconds"] + p["eval_seconds"] for p in record["policies"].values())
    lines += [
        "",
        f"Fixed-mu evaluation: {fixed_s:.0f} s for all {len(fixed)} values; the policies' "
        f"training and evaluation {work_s / 60:.0f} min in all; this invocation "
        f"{record['wall_s'] / 60:.0f} min (run folders and evaluations an earlier invocation "
        "finished are reused, their times are the ones above).",
        "",
        "Commands (each run folder is reproducible from its command; the experiment script runs "
        "them in-process, then evaluates):",
        "",
        "```",
        record["command"],
        *[p["command"] for p in record["policies"].values()],
        "```",
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def write_doc(path: Path, body: str) -> None:
    """Replace the generated block of ``path`` with ``body`` (create the file with a title
    and the block if needed)."""
    begin, end = block_markers(BLOCK)
    if not path.exists():
        path.write_text(
            f"# ThreeBody: learned time-step controllers against fixed mu\n\n{begin}\n{end}\n"
        )
    path.write_text(replace_block(path.read_text(), BLOCK, body))


def write_page(record: dict, page: Path = ROOT / PAGE) -> None:
    """:func:`write_doc` of :func:`render` (``--from_results``)."""
    write_doc(page, render(record))


def main(args: Args | None = None) -> dict:
    """Run the experiment; returns the raw results record (as written to JSON)."""
    if args is None:
        if regenerate(sys.argv[1:], write_page, prog="three_body_experiment"):
            return {}
        args = tyro.cli(Args)
    specs_all = QUICK_POLICIES if args.quick else FULL_POLICIES
    if args.quick:
        args = dataclasses.replace(args, seeds=(0, 1), num_systems=8, num_checks=20)
    names = [s.name for s in specs_all]
    unknown = [p for p in args.policies if p not in names]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; choose from {names}")
    specs = [s for s in specs_all if not args.policies or s.name in args.policies]
    out = Path(args.out)
    doc = Path(args.doc) if args.doc else (
        out / "three_body_experiment.md" if args.quick else ROOT / PAGE
    )  # fmt: skip
    check_output(out, args.quick)
    check_output(doc, args.quick)
    argv = sys.argv[1:] if Path(sys.argv[0]).name == "three_body_experiment.py" else []
    record = results_record(["python", GENERATOR, *argv], GENERATOR, PAGE)
    publish = not args.quick and doc.resolve() == (ROOT / PAGE).resolve()
    if publish and record["clean_tree"] is False and not args.allow_dirty:
        raise SystemExit(
            "three_body_experiment: the tree has uncommitted changes; commit first or pass "
            "--allow_dirty"
        )
    out.mkdir(parents=True, exist_ok=True)
    doc.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # FIXED MU on the evaluation systems
    fixed_raw = fixed_baselines(out, args.num_systems, args.num_checks, args.system0)

    # TRAIN AND EVALUATE every learned policy
    policies = {}
    for spec in specs:
        run_dir = out / spec.name
        trained = train_policy(spec, run_dir, args.seeds, args.retrain)
        res = evaluate_policy(run_dir, spec.preset, args.num_systems, args.num_checks,
                              args.system0)  # fmt: skip
        policies[spec.name] = {
            "command": trained["command"],
            "preset": spec.preset,
            "total_timesteps": int(trained["config"]["total_timesteps"]),
            "train_seconds": float(trained["eval"]["train_seconds"]),
            "mean_return": float(trained["eval"]["mean_return"]),
            "eval_seconds": float(res["seconds"]),
            "mean_decisions": float(np.mean(res["decisions"])),
            "energy_error": np.asarray(res["energy_error"]).tolist(),
            "substeps": np.asarray(res["substeps"]).tolist(),
            "terminated": np.asarray(res["terminated"]).astype(bool).tolist(),
        }
        row = summarize(spec.name, res["energy_error"], res["substeps"], res["terminated"])
        print(f"[{spec.name}] median dE {row['median_dE']:.2e}, median substeps "
              f"{row['median_substeps']:,.0f} (eval {res['seconds']:.0f}s)", flush=True)  # fmt: skip

    # REPORT
    record.update(
        args={**dataclasses.asdict(args), "seeds": list(args.seeds)},
        validation_systems=list(VALIDATION_SYSTEMS),
        fixed=fixed_raw,
        policies=policies,
        wall_s=time.perf_counter() - t0,
        plot=doc.with_suffix(".png").name,
    )
    fixed, learned, _ = summaries(record)
    plot(fixed, learned, doc.with_suffix(".png"))
    dest = RESULTS if publish else out / "results.json"
    try:
        write_results(dest, record, allow_dirty=args.allow_dirty or not publish)
    except DirtyTreeError as e:
        raise SystemExit(f"three_body_experiment: {e}") from None
    write_doc(doc, render(record))
    print(table(fixed, learned))
    print(f"wrote {doc}, {doc.with_suffix('.png')}, {dest}")
    return record


if __name__ == "__main__":
    main()
