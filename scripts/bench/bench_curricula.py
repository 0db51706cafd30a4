"""Benchmark the task teachers: ALP-GMM vs Covar-GMM vs RIAC vs Random on both task spaces,
the JAX mixture fit against scikit-learn's, and the teacher's share of training time.

Four parts, in one process, in this order (``--parts`` picks some):

1. **Teachers**: ``accelrl-teach`` (the same code as the command line) for every teacher and
   task space with seeds 0..S-1 in one program each; the fraction of the 100-task test set
   mastered every few segments. Reported per (space, teacher): final fraction and its area
   under the curve (the mean of the measurements over training, trapezoids over env steps,
   the start counted as 0), mean over seeds with a 95% bootstrap interval, and ALP-GMM minus
   Random with a bootstrap interval of the difference.
2. **Teacher overhead**: PPO on ``pendulum_dynamics`` (the cheapest environment, so the
   largest share), 2 seeds vmapped as the runner does, updates past the bootstrap timed round
   robin for a plain ``VecEnv`` and Random, ALP-GMM and RIAC; overhead = 1 - plain / teacher.
3. **GMM speed**: ``gmm.fit_best`` for k = 2..10 (ALP-GMM's setting, ``n_init=1``) against
   scikit-learn's ``GaussianMixture(covariance_type="full")`` for each k (AIC kept, as the
   reference does), on the same 250 points of ALP-GMM-like data (a synthetic student improving
   in one corner of a 2-D task box; the last 250 (task, ALP) points). Median of 11 calls each
   after compilation; scikit-learn under one BLAS/OpenMP thread (its default threads thrash on
   a shared machine) and with its defaults.
4. **Fixed-action ceiling**: on task spaces whose environment has discrete actions
   (``three_body_ic``), the fraction of the test set each fixed action masters
   (:func:`accelrl.curricula.fixed_action_mastery`) and their union, mean over evaluation keys:
   what the simplest policies reach, against what the students of part 1 master.

Usage::

    python scripts/bench/bench_curricula.py --quick                    # minutes: smoke sizes
    nice -n 10 python scripts/bench/bench_curricula.py --out runs/bench_curricula \\
        --plot docs/curricula_bench.png                                  # the full benchmark
    python scripts/bench/bench_curricula.py --parts gmm                # one part only
    python scripts/bench/bench_curricula.py --out DIR --parts          # table and plot again

Writes ``<out>/results.json`` and the plot; prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelrl._catalog import TASK_SPACE_NAMES, TEACHER_NAMES

# Per task space: the agent, its overrides and the step budget of the full and quick runs.
SPACES: dict[str, dict[str, Any]] = {
    "pendulum_dynamics": dict(env="Pendulum-v1", steps=327_680, quick_steps=40_960),
    "three_body_ic": dict(env="ThreeBody-v0", steps=163_840, quick_steps=20_480),
}
PARTS = ("teachers", "overhead", "gmm", "ceiling")
OVERHEAD_CASES = ("plain", "random", "alp_gmm", "riac")
"""Covar-GMM's refit is ALP-GMM's EM on one more dimension; its cost is not measured apart."""
NO_YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
"""XLA CPU option naming the fusions handed to YNNPACK; empty: none (the GMM part's variant)."""


# -- 1. GMM speed ---------------------------------------------------------------------------------


def alp_like_data(seed: int = 0, n_episodes: int = 1000, n: int = 250):
    """``f32[n, 3]``: the last ``n`` (task, ALP) points of a synthetic student improving in one
    corner of a 2-D box (docs/curricula.md, "Measured")."""
    import jax.numpy as jnp
    import numpy as np

    from accelrl.curricula import nearest_neighbour_alp

    rng = np.random.default_rng(seed)
    tasks = rng.uniform(0, 1, (n_episodes, 2)).astype(np.float32)
    t = np.arange(n_episodes) / n_episodes
    skill = np.clip(1.5 * t - np.linalg.norm(tasks - [0.2, 0.2], axis=1), 0, 1)
    returns = np.clip(skill + rng.normal(0, 0.05, n_episodes), 0, 1).astype(np.float32)
    alp = np.asarray(nearest_neighbour_alp(jnp.asarray(tasks), jnp.asarray(returns)))
    return np.c_[tasks, alp][-n:].astype(np.float32)


def bench_gmm(repeats: int = 11) -> dict[str, Any]:
    """JAX ``fit_best`` (k = 2..10, n_init 1) vs scikit-learn on the same 250 points (medians
    of ``repeats`` calls, keys / random states 0..repeats-1)."""
    import jax
    import numpy as np
    from _bench import block
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    from accelrl.curricula import gmm

    x = alp_like_data()
    ks = range(2, 11)
    fit = jax.jit(lambda key: gmm.fit_best(key, x, ks, n_init=1))
    aic = jax.jit(gmm.aic)

    def timed(fit_fn):  # fits with keys 0..repeats-1 after compilation: times and (gmm, k)
        times, fits = [], []
        for i in range(repeats):
            t0 = time.perf_counter()
            fits.append(block(fit_fn(jax.random.key(i))))
            times.append(time.perf_counter() - t0)
        return times, fits

    t0 = time.perf_counter()
    block(fit(jax.random.key(0)))
    first = time.perf_counter() - t0
    jax_times, fits = timed(fit)
    jax_k = [int(k) for _, k in fits]
    jax_aic = [float(aic(g, x)) for g, _ in fits]

    # The same program compiled without any of XLA's YNNPACK fusions (CPU, jaxlib builds that
    # know the option). Importing accelrl already drops YNNPACK's reductions (accelrl._xla, in
    # XLA_FLAGS, recorded below); this variant also drops its dots and elementwise fusions.
    out_no_ynn: dict[str, Any] | None = None
    if jax.default_backend() == "cpu":
        try:
            fit_no_ynn = jax.jit(
                lambda key: gmm.fit_best(key, x, ks, n_init=1),
                compiler_options={NO_YNN_OPTION: ""},
            )
            block(fit_no_ynn(jax.random.key(0)))
        except Exception as err:  # an XLA without the option
            out_no_ynn = {"error": f"{type(err).__name__}: {err}"[:300]}
        else:
            times, fits = timed(fit_no_ynn)
            out_no_ynn = {"median_s": statistics.median(times), "times_s": times,
                          "k": [int(k) for _, k in fits]}  # fmt: skip

    def sk_call(i):
        fits = [GaussianMixture(k, covariance_type="full", random_state=i).fit(x) for k in ks]
        aics = [f.aic(x) for f in fits]
        return int(np.argmin(aics)) + 2, float(min(aics))

    out: dict[str, Any] = {"jax_first_call_s": first, "xla_flags": os.environ.get("XLA_FLAGS", "")}
    out["jax"] = {"median_s": statistics.median(jax_times), "times_s": jax_times, "k": jax_k,
                  "aic": jax_aic}  # fmt: skip
    for label, limit in (("sklearn_1_thread", 1), ("sklearn_default_threads", None)):
        times, chosen, aics = [], [], []
        sk_call(0)  # warm-up (imports, thread pools)
        for i in range(repeats if limit == 1 else 2):
            t0 = time.perf_counter()
            if limit is None:
                k, a = sk_call(i)
            else:
                with threadpool_limits(limit):
                    k, a = sk_call(i)
            times.append(time.perf_counter() - t0)
            chosen.append(k)
            aics.append(a)
        out[label] = {"median_s": statistics.median(times), "times_s": times, "k": chosen,
                      "aic": aics}  # fmt: skip
    out["speedup_vs_1_thread"] = out["sklearn_1_thread"]["median_s"] / out["jax"]["median_s"]
    out["speedup_vs_default"] = out["sklearn_default_threads"]["median_s"] / out["jax"]["median_s"]
    if out_no_ynn is not None:
        out["jax_no_ynn_fusions"] = out_no_ynn
        if "median_s" in out_no_ynn:
            out["speedup_no_ynn_vs_1_thread"] = (
                out["sklearn_1_thread"]["median_s"] / out_no_ynn["median_s"]
            )
    return out


# -- 2. Teacher overhead ------------------------------------------------------------------------


def bench_overhead(
    rounds: int, warm_updates: int, per_round: int, seeds: int = 2
) -> dict[str, Any]:
    """Seconds per PPO update on ``pendulum_dynamics`` (default config, ``seeds`` seeds vmapped)
    with a plain ``VecEnv`` and with each teacher, timed round robin after ``warm_updates``."""
    from _bench import SeedProgram, time_round_robin

    from accelrl.agents import build
    from accelrl.curricula import make_teacher, task_space
    from accelrl.envs import VecEnv

    space = task_space("pendulum_dynamics")
    env, params = space.make()
    programs: dict[str, SeedProgram] = {}
    warm_s: dict[str, float] = {}
    warm_updates = -(-warm_updates // per_round) * per_round  # whole rounds
    for name in OVERHEAD_CASES:
        strategy = None if name == "plain" else make_teacher(name, space)
        agent, config, hparams = build(VecEnv(env, 8, strategy), "ppo", env_params=params,
                                       env_id=space.env_id)  # fmt: skip
        programs[name] = prog = SeedProgram(agent, hparams, seeds, per_round)
        # compile (the timed call's shape) + bootstrap
        warm_s[name] = sum(prog.advance() for _ in range(warm_updates // per_round))
    times = time_round_robin(programs, rounds)
    plain = statistics.median(times["plain"])
    out = {"config": {"num_envs": config.num_envs, "num_steps": config.num_steps,
                      "seeds": seeds, "warm_updates": warm_updates, "per_round": per_round,
                      "rounds": rounds}}  # fmt: skip
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {"s_per_update": med, "times": ts, "compile_and_warm_s": warm_s[name],
                     "overhead": 1.0 - plain / med if name != "plain" else 0.0}  # fmt: skip
    return out


# -- 3. Teachers --------------------------------------------------------------------------------


def _no_ynn_text(g: dict[str, Any]) -> str:
    v = g.get("jax_no_ynn_fusions")
    if v is None:
        return "no YNNPACK variant (not a CPU backend)"
    if "error" in v:
        return f"no YNNPACK variant ({v['error']})"
    return (
        f"JAX without any YNNPACK fusion {v['median_s'] * 1e3:.0f} ms "
        f"({g['speedup_no_ynn_vs_1_thread']:.1f}x vs 1 thread), k {v['k']}"
    )


def run_teachers(
    out: Path,
    seeds: list[int],
    quick: bool,
    spaces: list[str],
    budget_scale: float = 1.0,
    teachers: Sequence[str] = TEACHER_NAMES,
    teacher_kwargs: dict[str, dict[str, Any]] | None = None,
    test_seed: int = 0,
) -> dict[str, Any]:
    """``accelrl-teach`` for every (space, teacher); returns the per-run summaries.
    ``budget_scale`` multiplies each space's env steps per seed; ``teacher_kwargs`` maps a
    teacher's name to keyword arguments for it (on top of the quick run's small teachers);
    ``test_seed`` seeds the test task set the fraction mastered is measured on."""
    import numpy as np

    from accelrl.agents import RunOptions, StrategySpec, make_spec, train_run

    results: dict[str, Any] = {}
    for space in spaces:
        s = SPACES[space]
        steps = int((s["quick_steps"] if quick else s["steps"]) * budget_scale)
        for teacher in teachers:
            run_dir = out / space / teacher
            kwargs = _quick_teacher(teacher) if quick else {}  # mixtures refit in a few updates
            kwargs.update((teacher_kwargs or {}).get(teacher, {}))
            spec = make_spec(
                s["env"],
                "ppo",
                {"total_timesteps": steps, "eval_episodes": 4},
                seeds=tuple(seeds),
                reset_strategy=StrategySpec(teacher, {"task_space": space, **kwargs}),
                curriculum={"test_tasks": 16 if quick else 100, "test_seed": test_seed},
                run=RunOptions(segments=4 if quick else 8, checkpoint_every=100),
            )
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            t0 = time.perf_counter()
            train_run(spec, run_dir, progress=False)
            wall = time.perf_counter() - t0
            results[f"{space}/{teacher}"] = summarise_run(run_dir, wall)
            r = results[f"{space}/{teacher}"]
            print(
                f"[teachers] {space} {teacher}: final {np.mean(r['final']):.3f} "
                f"auc {np.mean(r['auc']):.3f} wall {wall:.0f}s",
                flush=True,
            )
    return results


def _quick_teacher(teacher: str) -> dict[str, Any]:
    if teacher in ("alp_gmm", "covar_gmm"):
        return {"fit_rate": 20, "ks": [2, 3, 4], "refit_every": 2}
    if teacher == "riac":
        return {"max_region_size": 20}
    return {}


def summarise_run(run_dir: Path, wall: float) -> dict[str, Any]:
    """Per seed: the fraction mastered at each measurement, its final value and AUC."""
    import numpy as np

    cfg = json.loads((run_dir / "config.json").read_text())
    ev = json.loads((run_dir / "eval.json").read_text())
    curves, final, auc = [], [], []
    steps = None
    for seed in cfg["seeds"]:
        m = json.loads((run_dir / f"seed_{seed}" / "metrics.json").read_text())["metrics"]
        values = np.asarray(m["mastered"], np.float64)
        at = np.isfinite(values)
        steps = np.asarray(m["env_steps"], np.float64)[at]
        curves.append(values[at].tolist())
        final.append(float(values[at][-1]))
        auc.append(area_under_curve(steps, values[at]))
    return {
        "seeds": cfg["seeds"],
        "steps": steps.tolist(),
        "curves": curves,
        "final": final,
        "auc": auc,
        "wall_s": wall,
        "train_s": ev["train_seconds"],
        "total_timesteps": cfg["config"]["total_timesteps"],
    }


def area_under_curve(steps, values) -> float:
    """Mean of the curve over [0, last step], trapezoids, the start (step 0) counted as 0."""
    import numpy as np

    x = np.concatenate([[0.0], np.asarray(steps, np.float64)])
    y = np.concatenate([[0.0], np.asarray(values, np.float64)])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / x[-1])


def bootstrap_mean(values, n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval over seeds."""
    import numpy as np

    from accelrl.agents.reporting import bootstrap_ci

    mean, low, high = bootstrap_ci(np.asarray(values, np.float64)[:, None], n_resamples=n,
                                   seed=seed)  # fmt: skip
    return float(mean[0]), float(low[0]), float(high[0])


def bootstrap_difference(a, b, n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` and a 95% interval, resampling each group's seeds separately."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    da = a[rng.integers(0, len(a), (n, len(a)))].mean(1)
    db = b[rng.integers(0, len(b), (n, len(b)))].mean(1)
    d = da - db
    return float(a.mean() - b.mean()), float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def run_ceiling(spaces: Sequence[str], keys: int, test_seed: int = 0) -> dict[str, Any]:
    """Per task space with discrete actions: the mean over ``keys`` evaluation keys of the
    fraction of its 100 test tasks (seeded by ``test_seed``) each fixed action masters, of the
    best single action's, and of the union's (tasks some fixed action masters). Spaces with
    other actions are skipped."""
    import jax
    import numpy as np

    from accelrl.agents.evaluation import evaluation_key
    from accelrl.curricula import fixed_action_mastery, task_space

    out: dict[str, Any] = {}
    for name in spaces:
        space = task_space(name)
        env, params = space.make()
        if getattr(env.action_space(params), "n", None) is None:
            print(f"[ceiling] {name}: skipped (continuous actions)", flush=True)
            continue
        t0 = time.perf_counter()
        masks = np.stack([
            np.asarray(fixed_action_mastery(space, jax.random.fold_in(evaluation_key(0), i),
                                            seed=test_seed))
            for i in range(keys)
        ])  # fmt: skip  # [keys, A, n]
        per_action = masks.mean(axis=2)  # [keys, A]
        out[name] = {
            "keys": keys,
            "test_seed": test_seed,
            "per_action": per_action.mean(axis=0).tolist(),
            "best_action": int(per_action.mean(axis=0).argmax()),
            "best": float(per_action.max(axis=1).mean()),
            "union": float(masks.any(axis=1).mean()),
            "wall_s": time.perf_counter() - t0,
        }
        r = out[name]
        print(f"[ceiling] {name}: best fixed action {r['best_action']} masters {r['best']:.3f}, "
              f"some fixed action {r['union']:.3f} of the test tasks (mean of {keys} keys; per "
              f"action {np.round(r['per_action'], 2).tolist()}); {r['wall_s']:.0f} s",
              flush=True)  # fmt: skip
    return out


def table(results: dict[str, Any], spaces: list[str]) -> str:
    """Markdown table: final and AUC fraction mastered per (space, teacher), and ALP-GMM minus
    Random."""
    lines = [
        "| task space | teacher | final mastered (95% CI) | AUC mastered (95% CI) | wall s |",
        "|---|---|---|---|---|",
    ]
    for space in spaces:
        for teacher in TEACHER_NAMES:
            r = results.get(f"{space}/{teacher}")
            if r is None:
                continue
            f, fl, fh = bootstrap_mean(r["final"])
            a, al, ah = bootstrap_mean(r["auc"])
            lines.append(f"| `{space}` | {teacher} | {f:.3f} [{fl:.3f}, {fh:.3f}] | "
                         f"{a:.3f} [{al:.3f}, {ah:.3f}] | {r['wall_s']:.0f} |")  # fmt: skip
        alp, rnd = results.get(f"{space}/alp_gmm"), results.get(f"{space}/random")
        if alp and rnd:
            f, fl, fh = bootstrap_difference(alp["final"], rnd["final"])
            a, al, ah = bootstrap_difference(alp["auc"], rnd["auc"])
            lines.append(f"| `{space}` | ALP-GMM - Random | {f:+.3f} [{fl:+.3f}, {fh:+.3f}] | "
                         f"{a:+.3f} [{al:+.3f}, {ah:+.3f}] | |")  # fmt: skip
    return "\n".join(lines)


def plot(path: Path, results: dict[str, Any], spaces: list[str],
         ceiling: dict[str, Any] | None = None) -> None:  # fmt: skip
    """One panel per task space: fraction mastered against env steps per teacher (mean over
    seeds, 95% bootstrap band), and the best fixed action's fraction (``ceiling``, from the
    ceiling part) as a dashed line where measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from accelrl.agents.reporting import bootstrap_ci

    fig, axes = plt.subplots(1, len(spaces), figsize=(5 * len(spaces), 3.4), dpi=90,
                             squeeze=False)  # fmt: skip
    for ax, space in zip(axes[0], spaces, strict=True):
        for i, teacher in enumerate(TEACHER_NAMES):
            r = results.get(f"{space}/{teacher}")
            if r is None:
                continue
            steps = np.asarray(r["steps"])
            mean, low, high = bootstrap_ci(np.asarray(r["curves"]))
            ax.plot(steps, mean, "o-", ms=2.5, lw=1.4, color=f"C{i}",
                    label=f"{teacher} ({len(r['seeds'])} seeds)")  # fmt: skip
            ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.15)
        if ceiling and space in ceiling:
            c = ceiling[space]
            ax.axhline(c["best"], color="0.3", ls="--", lw=1,
                       label=f"best fixed action ({c['best']:.2f})")  # fmt: skip
        ax.set_title(space, fontsize=10)
        ax.set_xlabel("environment steps (per seed)")
        ax.set_ylabel("fraction of test tasks mastered")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- The protocol run: ALP-GMM against Random, one task space, seeds named in advance -------------

PROTOCOL: dict[str, dict[str, Any]] = {
    "pendulum_dynamics": dict(
        budget_scale=6.0,
        teacher_kwargs={},
        validation_seeds=tuple(range(20)),
        test_seeds=tuple(range(1000, 1020)),
        parts=("teachers", "overhead", "gmm"),
    ),
    "three_body_ic": dict(
        budget_scale=3.0,
        teacher_kwargs={"alp_gmm": {"fit_rate": 80}},
        validation_seeds=tuple(range(16)),
        test_seeds=tuple(range(1000, 1016)),
        parts=("teachers", "ceiling"),
    ),
}
"""Per task space, what was chosen on the validation split (training seeds ``validation_seeds``
on the test task set of seed :data:`VALIDATION_TASK_SEED`: the budget, ALP-GMM's settings and
the seed count were all fixed on those runs), and the test split evaluated once per reported
run: new training seeds ``test_seeds`` on a new test task set (:data:`TEST_TASK_SEED`)."""
PROTOCOL_TEACHERS = ("alp_gmm", "random")
VALIDATION_TASK_SEED = 0
TEST_TASK_SEED = 1
GENERATOR = "scripts/bench/bench_curricula.py"
PAGE = "docs/curricula.md"
ROOT = Path(__file__).resolve().parents[2]
GMM_TARGET = 10.0
"""The JAX k = 2..10 fit is at least this many times faster than single-threaded scikit-learn."""
OVERHEAD_TARGET = 0.05
"""Each teacher adds less than this fraction to PPO's time per update."""


def results_path(space: str) -> Path:
    """The raw results file of ``space``'s protocol run (test split)."""
    return ROOT / "docs" / "results" / "curricula" / f"{space}.json"


def compare(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ALP-GMM minus Random per measure (``final``, ``auc``): the paired bootstrap over training
    seeds (seed ``s`` of one teacher against seed ``s`` of the other) and its verdict.

    Raises:
        ValueError: the two runs did not use the same seeds, in the same order.
    """
    from accelrl.results import paired_bootstrap, verdict

    alp, rnd = results["alp_gmm"], results["random"]
    if list(alp["seeds"]) != list(rnd["seeds"]):
        raise ValueError(f"ALP-GMM's seeds {alp['seeds']} and Random's {rnd['seeds']} differ")
    out = {}
    for measure in ("final", "auc"):
        diff, low, high = paired_bootstrap(alp[measure], rnd[measure])
        out[measure] = {"diff": diff, "low": low, "high": high, "verdict": verdict(low, high)}
    return out


def _seed_range(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def space_block(record: dict[str, Any]) -> str:
    """The page's block for one protocol run: the teachers' table, ALP-GMM minus Random with
    its paired interval, the verdict and the target line (from the per-seed values alone)."""
    import numpy as np

    from accelrl.results import provenance_line, target_line

    space, runs = record["space"], record["teachers"]
    comp = compare(runs)
    n = len(runs["alp_gmm"]["seeds"])
    split = record["split"]
    lines = [
        f"`{space}`, **{split} split**: training seeds {_seed_range(runs['alp_gmm']['seeds'])} "
        f"({n} per teacher), test task set of seed {record['test_task_seed']} "
        f"({record['test_tasks']} tasks), {runs['alp_gmm']['total_timesteps']:,} env steps per "
        f"seed (x{record['budget_scale']:g} the base budget), ALP-GMM settings "
        f"{json.dumps(record['teacher_kwargs'].get('alp_gmm', {})) or '{}'} on top of its "
        "defaults. Fraction of the test tasks mastered: mean over seeds [95% bootstrap "
        "interval]; the difference row is the paired bootstrap over seeds.",
        "",
        "| teacher | final mastered | AUC mastered | wall s |",
        "|---|---|---|---|",
    ]
    for teacher in PROTOCOL_TEACHERS:
        r = runs[teacher]
        f, fl, fh = bootstrap_mean(r["final"])
        a, al, ah = bootstrap_mean(r["auc"])
        lines.append(f"| {teacher} | {f:.3f} [{fl:.3f}, {fh:.3f}] | {a:.3f} [{al:.3f}, {ah:.3f}] "
                     f"| {r['wall_s']:.0f} |")  # fmt: skip
    cells = [
        f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] {c['verdict']}"
        for c in (comp["final"], comp["auc"])
    ]
    lines.append(f"| ALP-GMM - Random (paired) | {cells[0]} | {cells[1]} | |")
    met = all(comp[m]["verdict"] == "beats" for m in ("final", "auc"))
    lines += ["", target_line(
        f"ALP-GMM above Random on `{space}` ({split} split)", met,
        "both paired intervals exclude zero above" if met else
        "final: " + comp["final"]["verdict"] + ", AUC: " + comp["auc"]["verdict"]
        + "; a claim needs both intervals above zero",
    )]  # fmt: skip
    ceiling = record.get("ceiling", {}).get(space)
    if ceiling:
        students = max(float(np.mean(runs[t]["final"])) for t in PROTOCOL_TEACHERS)
        lines += [
            "",
            f"Fixed-action ceiling (the same test tasks, mean of {ceiling['keys']} evaluation "
            f"keys): the best single action ({ceiling['best_action']}) masters "
            f"{ceiling['best']:.3f} of the tasks, some fixed action {ceiling['union']:.3f}; "
            f"the better student's final mean is {students:.3f}"
            + (" (below the best fixed action)." if students < ceiling["best"] else "."),
        ]
    if record.get("plot"):
        lines += ["", f"![fraction mastered over training, `{space}`, {split} split, mean and "
                  f"95% bootstrap band]({record['plot']})"]  # fmt: skip
    lines += ["", provenance_line(record)]
    return "\n".join(lines)


def gmm_block(record: dict[str, Any]) -> str:
    """The page's GMM speed block (part ``gmm`` of a protocol run) with its target line."""
    from accelrl.results import provenance_line, target_line

    g = record["gmm"]
    jax_ms, sk1, skd = (g[k]["median_s"] * 1e3 for k in ("jax", "sklearn_1_thread",
                                                         "sklearn_default_threads"))  # fmt: skip
    lines = [
        "| fit of k = 2..10 on the same 250 points | median ms per call | chosen k |",
        "|---|---|---|",
        f"| JAX `fit_best`, `n_init=1` (first call {g['jax_first_call_s']:.1f} s) | "
        f"{jax_ms:.0f} | {' '.join(map(str, g['jax']['k']))} |",
        f"| scikit-learn, 1 thread | {sk1:.0f} ({g['speedup_vs_1_thread']:.1f}x) | "
        f"{' '.join(map(str, g['sklearn_1_thread']['k']))} |",
        f"| scikit-learn, default threads | {skd:.0f} ({g['speedup_vs_default']:.1f}x) | "
        f"{' '.join(map(str, g['sklearn_default_threads']['k']))} |",
        "",
        _no_ynn_text(g) + ".",
        "",
        target_line(
            f"JAX fit >= {GMM_TARGET:g}x faster than single-threaded scikit-learn",
            g["speedup_vs_1_thread"] >= GMM_TARGET,
            f"{g['speedup_vs_1_thread']:.1f}x in this run",
        ),
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def overhead_block(record: dict[str, Any]) -> str:
    """The page's teacher-overhead block (part ``overhead``) with its target line."""
    from accelrl.results import provenance_line, target_line

    o = record["overhead"]
    c = o["config"]
    lines = [
        f"PPO on `pendulum_dynamics` (default config, {c['seeds']} seeds vmapped), median ms "
        f"per update over {c['rounds']} rounds of {c['per_round']} updates past "
        f"{c['warm_updates']} warm-up updates, round robin:",
        "",
        "| case | ms / update | overhead |",
        "|---|---|---|",
    ]
    for name in OVERHEAD_CASES:
        r = o[name]
        share = "" if name == "plain" else f"{100 * r['overhead']:+.1f}%"
        label = "plain `VecEnv`" if name == "plain" else name
        lines.append(f"| {label} | {r['s_per_update'] * 1e3:.0f} | {share} |")
    worst = max(o[n]["overhead"] for n in OVERHEAD_CASES[1:])
    lines += [
        "",
        target_line(
            f"teacher overhead < {100 * OVERHEAD_TARGET:g}% of training time",
            worst < OVERHEAD_TARGET,
            f"largest {100 * worst:+.1f}%; one timing run on a shared machine, no interval",
        ),
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def page_blocks(record: dict[str, Any]) -> dict[str, str]:
    """The page blocks a raw results file renders (block name -> Markdown)."""
    blocks = {f"curricula_{record['space']}": space_block(record)}
    if "gmm" in record:
        blocks["curricula_gmm"] = gmm_block(record)
    if "overhead" in record:
        blocks["curricula_overhead"] = overhead_block(record)
    return blocks


def write_page(record: dict[str, Any], page: Path) -> None:
    """Replace the page's blocks with those of ``record`` (:func:`page_blocks`)."""
    from accelrl.results import write_blocks

    write_blocks(page, page_blocks(record))


def run_protocol(args: argparse.Namespace, out: Path) -> int:
    """``--protocol SPACE``: the declared comparison on one space, its split's seeds."""
    from accelrl.results import (
        DirtyTreeError,
        check_output,
        is_under,
        results_record,
        write_results,
    )

    space = args.protocol
    spec = PROTOCOL[space]
    test = args.split == "test"
    seeds = list(spec["test_seeds"] if test else spec["validation_seeds"])
    task_seed = TEST_TASK_SEED if test else VALIDATION_TASK_SEED
    parts = [p for p in spec["parts"] if p in args.parts]
    if args.quick:
        seeds = seeds[:2]
    dest = out / "results.json" if (args.quick or not test) else results_path(space)
    check_output(dest, args.quick)
    if args.plot:
        check_output(args.plot, args.quick)
    command = ["python", GENERATOR, *args.argv]
    record = results_record(command, GENERATOR, PAGE)
    if record["clean_tree"] is False and not (args.allow_dirty or args.quick or not test):
        raise SystemExit(
            f"bench_curricula: the tree has uncommitted changes (commit "
            f"{str(record['commit'])[:10]}); commit first or pass --allow_dirty"
        )
    print(f"[protocol] {space} {args.split} split: seeds {seeds}, task seed {task_seed}, "
          f"parts {parts}; commit {record['commit']}, clean {record['clean_tree']}",
          flush=True)  # fmt: skip
    t0 = time.perf_counter()
    record.update(
        space=space,
        split=args.split,
        seeds=seeds,
        test_task_seed=task_seed,
        test_tasks=16 if args.quick else 100,
        budget_scale=1.0 if args.quick else spec["budget_scale"],
        teacher_kwargs=spec["teacher_kwargs"],
        quick=args.quick,
    )
    record["teachers"] = run_teachers(
        out, seeds, args.quick, [space], 1.0 if args.quick else spec["budget_scale"],
        teachers=PROTOCOL_TEACHERS,
        teacher_kwargs=spec["teacher_kwargs"], test_seed=task_seed,
    )  # fmt: skip
    record["teachers"] = {k.split("/", 1)[1]: v for k, v in record["teachers"].items()}
    if "overhead" in parts:
        record["overhead"] = bench_overhead(rounds=2 if args.quick else 6,
                                            warm_updates=8 if args.quick else 32,
                                            per_round=4 if args.quick else 8)  # fmt: skip
    if "gmm" in parts:
        record["gmm"] = bench_gmm(repeats=3 if args.quick else 11)
    if "ceiling" in parts:
        record["ceiling"] = run_ceiling([space], 1 if args.quick else args.ceiling_keys, task_seed)
    record["wall_s"] = time.perf_counter() - t0
    plot_path = Path(args.plot) if args.plot else out / f"curricula_{space}.png"
    if is_under(plot_path, ROOT / "docs"):
        record["plot"] = str(plot_path.resolve().relative_to(ROOT / "docs"))
    try:
        write_results(
            dest, record, allow_dirty=True if not test or args.quick else args.allow_dirty
        )
    except DirtyTreeError as e:
        raise SystemExit(f"bench_curricula: {e}") from None
    for body in page_blocks(record).values():
        print(body, flush=True)
    plot(plot_path, {f"{space}/{k}": v for k, v in record["teachers"].items()}, [space],
         record.get("ceiling"))  # fmt: skip
    if test and not args.quick:
        write_page(record, ROOT / PAGE)
        print(f"results in {dest}; page {PAGE} updated; plot {plot_path}", flush=True)
    else:
        print(f"results in {dest} (not a page: {args.split} split"
              f"{', quick' if args.quick else ''}); plot {plot_path}", flush=True)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    from accelrl.results import check_output, regenerate

    argv = sys.argv[1:] if argv is None else list(argv)
    if regenerate(argv, write_page, prog="bench_curricula"):
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke sizes (a few minutes)")
    p.add_argument("--out", default="runs/bench_curricula", help="folder for runs and results")
    p.add_argument("--plot", default=None, help="plot path (default: <out>/curricula_bench.png)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per run (5; quick 2)")
    p.add_argument(
        "--parts",
        nargs="*",
        choices=PARTS,
        default=list(PARTS),
        help="parts to run (none: only print the table and plot from results.json)",
    )
    p.add_argument("--spaces", nargs="+", choices=TASK_SPACE_NAMES, default=list(SPACES))
    p.add_argument(
        "--teachers", nargs="+", choices=TEACHER_NAMES, default=list(TEACHER_NAMES),
        help="teachers of the teachers part (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every space's env steps per seed (2: twice the budget)",
    )
    p.add_argument(
        "--overhead-seeds", type=int, default=2, help="seeds vmapped in the overhead part (2)"
    )
    p.add_argument(
        "--teacher-kwargs",
        type=json.loads,
        default={},
        metavar="JSON",
        help='keyword arguments per teacher, e.g. \'{"alp_gmm": {"fit_rate": 100}}\'',
    )
    p.add_argument(
        "--ceiling-keys",
        type=int,
        default=5,
        help="evaluation keys of the fixed-action ceiling (default 5; quick 1)",
    )
    p.add_argument(
        "--protocol",
        choices=list(PROTOCOL),
        default=None,
        help="the declared ALP-GMM vs Random comparison on this space (its budget, teacher "
        "settings and seeds; --seeds/--budget-scale/--teachers/--teacher-kwargs/--spaces are "
        "fixed by it): the test split writes docs/results/curricula/SPACE.json and the page",
    )
    p.add_argument(
        "--split",
        choices=["validation", "test"],
        default="test",
        help="with --protocol: the validation seeds (choices; results stay in --out) or the "
        "test seeds (the reported run, once)",
    )
    p.add_argument(
        "--allow_dirty",
        action="store_true",
        help="write the protocol's results from a tree with uncommitted changes (the page says so)",
    )
    args = p.parse_args(argv)
    args.argv = argv  # recorded as the command: the arguments parsed, not the caller's
    try:
        check_output(args.out, args.quick)
        if args.plot:
            check_output(args.plot, args.quick)
    except ValueError as e:
        p.error(str(e))
    from accelrl.agents.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    out = Path(args.out)
    if args.protocol is not None:
        fixed = [f"--{k}" for k in ("seeds", "budget-scale", "teachers", "teacher-kwargs",
                 "spaces") if any(a.startswith(f"--{k}") for a in argv)]  # fmt: skip
        if fixed:
            p.error(f"--protocol fixes {', '.join(fixed)}; leave them out")
        if args.ceiling_keys < 1:
            p.error(f"--ceiling-keys must be at least 1, got {args.ceiling_keys}")
        out.mkdir(parents=True, exist_ok=True)
        return run_protocol(args, out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["command"] = " ".join(["python", GENERATOR, *args.argv])
    t_all = time.perf_counter()

    def save():
        results_path.write_text(json.dumps(results, indent=1))

    if "teachers" in args.parts:
        if args.budget_scale <= 0:
            p.error(f"--budget-scale must be positive, got {args.budget_scale}")
        tk = args.teacher_kwargs
        if not isinstance(tk, dict) or not all(
            k in TEACHER_NAMES and isinstance(v, dict) for k, v in tk.items()
        ):
            p.error(f"--teacher-kwargs must map teacher names {TEACHER_NAMES} to objects, got {tk}")
        runs = run_teachers(
            out, seeds, args.quick, args.spaces, args.budget_scale, teachers=args.teachers,
            teacher_kwargs=tk,
        )  # fmt: skip
        results.setdefault("teachers", {}).update(runs)
        save()
    if "overhead" in args.parts:
        if args.overhead_seeds < 1:
            p.error(f"--overhead-seeds must be at least 1, got {args.overhead_seeds}")
        quick = args.quick
        results["overhead"] = o = bench_overhead(
            rounds=2 if quick else 6, warm_updates=8 if quick else 32, per_round=4 if quick else 8,
            seeds=args.overhead_seeds,
        )  # fmt: skip
        plain = o["plain"]["s_per_update"]
        print(f"[overhead] plain VecEnv {plain * 1e3:.0f} ms/update; " + "; ".join(
            f"{n} {o[n]['s_per_update'] * 1e3:.0f} ms ({100 * o[n]['overhead']:+.1f}%)"
            for n in OVERHEAD_CASES[1:]), flush=True)  # fmt: skip
        save()
    if "gmm" in args.parts:
        results["gmm"] = g = bench_gmm()
        print(
            f"[gmm] JAX fit_best k=2..10: {g['jax']['median_s'] * 1e3:.0f} ms (first call "
            f"{g['jax_first_call_s']:.1f} s); scikit-learn 1 thread "
            f"{g['sklearn_1_thread']['median_s'] * 1e3:.0f} ms ({g['speedup_vs_1_thread']:.1f}x), "
            f"default threads {g['sklearn_default_threads']['median_s'] * 1e3:.0f} ms "
            f"({g['speedup_vs_default']:.1f}x); k JAX {g['jax']['k']} sklearn "
            f"{g['sklearn_1_thread']['k']}; " + _no_ynn_text(g),
            flush=True,
        )
        save()
    if "ceiling" in args.parts:
        if args.ceiling_keys < 1:
            p.error(f"--ceiling-keys must be at least 1, got {args.ceiling_keys}")
        results.setdefault("ceiling", {}).update(
            run_ceiling(args.spaces, 1 if args.quick else args.ceiling_keys)
        )
        save()
    if results.get("teachers"):
        spaces = [s for s in args.spaces if any(k.startswith(s) for k in results["teachers"])]
        print(table(results["teachers"], spaces))
        plot_path = Path(args.plot) if args.plot else out / "curricula_bench.png"
        plot(plot_path, results["teachers"], spaces, results.get("ceiling"))
        print(f"plot: {plot_path}")
    results["wall_s"] = time.perf_counter() - t_all
    save()
    print(f"wall time {results['wall_s']:.0f} s; results in {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
