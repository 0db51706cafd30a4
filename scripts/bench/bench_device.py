"""The device suite: what accelrl does on one accelerator, measured in one run.

Four parts, each program compiled once ahead of time (``jit(...).lower(...).compile()``, so
compilation is timed on its own) and then timed over ``repeats`` calls (median):

* **environments**: environment steps/s of every registered accelrl id and CartPole-v1 at
  batches ``2^10 .. 2^16`` (``VecEnv``, wrapper-owned resets, random actions, a ``lax.scan`` of
  ``env_steps`` steps per call);
* **training**: environment steps/s (and updates/s) of one member training with the registered
  default config: PPO on CartPole-v1, IPPO on MPE simple spread, PPO on ThreeBody and on
  MallocGame (``train_updates`` updates per call);
* **members**: seeds per program, 1 .. 1024 vmapped members of PPO CartPole (PureJaxRL's
  headline shape), total and per-member steps/s;
* **memory**: per program, the bytes XLA plans for it (arguments + outputs + temporaries, from
  ``Compiled.memory_analysis``, every backend), and the device's peak bytes in use after it
  (``Device.memory_stats``: a process high-water mark, where the backend reports one; the CPU
  does not).

Usage (run by path; the folder is not part of the wheel)::

    python scripts/bench/bench_device.py                    # on a GPU: docs/results/gpu.json + docs/gpu.md
    python scripts/bench/bench_device.py --quick --out DIR  # small plan, on any backend; never docs/
    python scripts/bench/bench_device.py --page-only        # rebuild docs/gpu.md from docs/results/gpu.json

The full run refuses the CPU backend (it is the GPU page's run); ``--quick`` runs in under
3 minutes on 2 CPU cores and writes ``DIR/gpu.json`` and ``DIR/gpu.md`` (default
``bench_out/device``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results" / "gpu.json"
PAGE = DOCS / "gpu.md"
COMMAND = "python scripts/bench/bench_device.py"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run measures."""

    batches: tuple[int, ...]
    """Environment batch sizes of the environment part."""
    env_steps: int
    """Batched environment steps per timed call."""
    train_updates: int
    """Agent updates per timed call (training and members parts)."""
    members: tuple[int, ...]
    """Member counts of the seeds-per-program part."""
    repeats: int
    """Timed calls per program (the median is reported)."""


FULL = Plan(
    batches=tuple(2**k for k in range(10, 17)),
    env_steps=100,
    train_updates=10,
    members=(1, 4, 16, 64, 256, 1024),
    repeats=5,
)
QUICK = Plan(batches=(2**10,), env_steps=4, train_updates=2, members=(1, 4), repeats=2)
# (4 batched steps: Relax-v0 solves 1,024 linear systems per step, about 1.7 CPU-s on 2 cores)

TRAINING: tuple[tuple[str, str], ...] = (
    ("CartPole-v1", "ppo"),
    ("MPE_simple_spread_v3", "ippo"),
    ("ThreeBody-v0", "ppo"),
    ("MallocGame-v0", "ppo"),
)
"""``(env id, agent)`` of the training part, each with its registered default config."""
MEMBERS_TASK = ("CartPole-v1", "ppo")
"""The seeds-per-program part's program."""
PARTS = ("envs", "training", "members")
"""The suite's parts (``--parts``; memory is measured with every program)."""


# ---------------------------------------------------------------------------------------------
# Measuring


def peak_bytes() -> int | None:
    """The first device's peak bytes in use so far (None where the backend reports none)."""
    import jax

    stats = jax.local_devices()[0].memory_stats()
    if not stats:
        return None
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else int(peak)


def program_bytes(compiled: Any) -> int | None:
    """Bytes XLA plans for a compiled program: arguments + outputs + temporaries - aliased."""
    try:
        m = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if m is None:
        return None
    return int(
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )


def measure(fn: Callable, args: Sequence[Any], repeats: int, make_args: Callable | None = None):
    """Compile ``fn`` (a jitted function) for ``args``, call it once untimed, then ``repeats``
    times timed, blocking on the outputs.

    Args:
        fn: a ``jax.jit``-wrapped function.
        args: its arguments (arrays; no static ones).
        repeats: timed calls (at least 1).
        make_args: optional ``i -> args`` for the ``i``-th call (fresh keys per call).

    Returns:
        ``{"compile_s", "median_s", "times_s", "program_bytes", "peak_bytes"}``.
    """
    import jax

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    times = []
    for i in range(repeats):
        call_args = args if make_args is None else make_args(i + 1)
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*call_args))
        times.append(time.perf_counter() - t0)
    return {
        "compile_s": compile_s,
        "median_s": statistics.median(times),
        "times_s": times,
        "program_bytes": program_bytes(compiled),
        "peak_bytes": peak_bytes(),
    }


def bench_env(env_id: str, batch: int, steps: int, repeats: int) -> dict[str, Any]:
    """Environment steps/s of ``env_id`` at ``batch`` copies (random actions).

    Returns:
        A row ``{"env", "batch", "steps_per_s", ...}`` (:func:`measure`'s fields included).
    """
    import jax
    import jax.numpy as jnp

    from accelrl.envs import VecEnv, is_multi_agent, make

    env, params = make(env_id)
    vec = VecEnv(env, batch)
    if is_multi_agent(env_id):
        spaces = {a: env.action_space(a, params) for a in env.agents}

        def sample(key):
            return {
                a: jax.vmap(sp.sample)(jax.random.split(jax.random.fold_in(key, i), batch))
                for i, (a, sp) in enumerate(spaces.items())
            }
    else:
        space = env.action_space(params)

        def sample(key):
            return jax.vmap(space.sample)(jax.random.split(key, batch))

    @jax.jit
    def rollout(key):
        _, state = vec.reset(key, params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            _, state, reward, *_ = vec.step(ks, state, sample(ka), params)
            return state, sum(jnp.sum(r) for r in jax.tree.leaves(reward))

        _, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
        return rewards.sum()

    row = measure(rollout, (jax.random.key(0),), repeats, make_args=lambda i: (jax.random.key(i),))
    return {
        "env": env_id,
        "batch": batch,
        "steps": steps,
        "steps_per_s": batch * steps / row["median_s"],
        **row,
    }


def bench_training(
    env_id: str, agent_name: str, members: int, updates: int, repeats: int
) -> dict[str, Any]:
    """Training throughput of ``members`` vmapped members of ``agent_name`` on ``env_id`` (the
    registered default config), ``updates`` updates per timed call.

    Returns:
        A row with ``steps_per_s`` (environment steps over all members), ``updates_per_s``
        (per member) and :func:`measure`'s fields.
    """
    import jax
    import jax.numpy as jnp

    from accelrl.agents import build
    from accelrl.agents.evaluation import training_key
    from accelrl.agents.runner import batch_hparams

    agent, config, hparams = build(env_id, agent_name)
    keys = jnp.stack([training_key(s) for s in range(members)])
    hps = batch_hparams(hparams, members)
    t0 = time.perf_counter()
    states = jax.block_until_ready(jax.jit(jax.vmap(agent.init))(keys, hps))
    init_s = time.perf_counter() - t0
    vrun = jax.vmap(agent.run, in_axes=(0, 0, None, None))
    run = jax.jit(lambda s, h, start: vrun(s, h, updates, start))
    row = measure(run, (states, hps, jnp.int32(0)), repeats)
    steps = updates * config.steps_per_update * members
    return {
        "env": env_id,
        "agent": agent_name,
        "members": members,
        "num_envs": config.num_envs,
        "steps_per_update": config.steps_per_update,
        "updates": updates,
        "init_s": init_s,
        "steps_per_s": steps / row["median_s"],
        "updates_per_s": updates / row["median_s"],
        **row,
    }


def device_info() -> dict[str, Any]:
    """The backend and the first local device, in words."""
    import jax

    d = jax.local_devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": d.device_kind,
        "local_devices": jax.local_device_count(),
        "compilation_cache": jax.config.jax_compilation_cache_dir or None,
    }


def run_suite(
    plan: Plan,
    env_ids: Sequence[str],
    parts: Sequence[str] = PARTS,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure the ``parts`` (of :data:`PARTS`) of ``plan``, on the environments ``env_ids``.

    Returns:
        ``{"device", "plan", "envs", "training", "members", "wall_s", "cpu_s"}``: the rows of
        each part (lists of dicts, see :func:`bench_env` and :func:`bench_training`), wall-clock
        and process CPU seconds (all threads), without provenance.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    envs, training, members = [], [], []
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown parts {unknown}; choose from {list(PARTS)}")
    log(f"{'environment':34s} {'batch':>7s} {'steps/s':>12s} {'compile s':>9s}")
    for env_id, batch in itertools.product(env_ids if "envs" in parts else (), plan.batches):
        row = bench_env(env_id, batch, plan.env_steps, plan.repeats)
        envs.append(row)
        log(f"{env_id:34s} {batch:7d} {row['steps_per_s']:12.4g} {row['compile_s']:9.2f}")
    log(f"{'training':34s} {'':>7s} {'steps/s':>12s} {'compile s':>9s}")
    for env_id, agent_name in TRAINING if "training" in parts else ():
        row = bench_training(env_id, agent_name, 1, plan.train_updates, plan.repeats)
        training.append(row)
        log(
            f"{agent_name + ' ' + env_id:34s} {'':7s} {row['steps_per_s']:12.4g} "
            f"{row['compile_s']:9.2f}"
        )
    log(f"{'members (PPO CartPole)':34s} {'M':>7s} {'steps/s':>12s} {'compile s':>9s}")
    for m in plan.members if "members" in parts else ():
        if (
            m == 1 and training and MEMBERS_TASK in TRAINING
        ):  # the same program as the training part's row
            row = training[TRAINING.index(MEMBERS_TASK)]
        else:
            row = bench_training(*MEMBERS_TASK, m, plan.train_updates, plan.repeats)
        members.append(row)
        log(f"{'':34s} {m:7d} {row['steps_per_s']:12.4g} {row['compile_s']:9.2f}")
    return {
        "device": device_info(),
        "plan": dataclasses.asdict(plan),
        "envs": envs,
        "training": training,
        "members": members,
        "wall_s": time.perf_counter() - t_start,
        "cpu_s": time.process_time() - cpu_start,
    }


# ---------------------------------------------------------------------------------------------
# The page


def _num(x: float | None) -> str:
    """Three significant figures, thousands separated (``1,230,000``, ``12.3``), or ``-``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if abs(x) >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}"
    return f"{x:.3g}"


def _mib(x: int | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def offline_install() -> str:
    """Markdown: preparing the wheels on a machine with network, installing them without."""
    return f"""\
## Installing on a GPU machine without network

Prepare a folder of wheels on a machine with network access, for the GPU machine's Python
version and platform (below: Python 3.11 on Linux x86_64), then copy the folder and this
checkout across:

```bash
pip wheel --no-deps -w wheels .                     # accelrl itself, from the checkout
pip download -d wheels --only-binary=:all: \\
    --python-version 3.11 --platform manylinux_2_27_x86_64 \\
    "jax[cuda12]==JAX_VERSION" wheels/accelrl-*.whl  # its dependencies and the CUDA plugin
```

`jax[cuda12]` brings the CUDA 12 plugin and NVIDIA's runtime wheels (use `jax[cuda13]` for a
CUDA 13 driver); `JAX_VERSION` is the jax this checkout runs (`python -c "import jax;
print(jax.__version__)"`; 0.10.2 when this page was written). On the GPU machine, in a fresh
virtual environment:

```bash
pip install --no-index --find-links wheels "jax[cuda12]==JAX_VERSION" accelrl
python -c "import jax; print(jax.devices())"        # must list the GPU
{COMMAND}
```

The script is run from the checkout (`scripts/bench/` is not in the wheel); it writes
`docs/results/gpu.json` and this page, and refuses a tree with uncommitted changes unless
given `--allow-dirty` (the page then says so).
"""


def render_page(results: dict | None) -> str:
    """``docs/gpu.md`` from the results file (None: the page of a suite not yet run)."""
    head = "# accelrl on a GPU\n\n"
    how = (
        f"The page is generated by `{COMMAND}` (the full run, on a GPU) from the raw results "
        "file `docs/results/gpu.json` beside it; `--page-only` rebuilds it from that file. "
        f"`{COMMAND} --quick --out DIR` runs a small plan on any backend (the CPU included, "
        "in under 3 minutes on 2 cores) and never writes into `docs/`.\n\n"
    )
    if results is None:
        return (
            head
            + "**Not run on a GPU yet.** No GPU was available where this suite was written, so "
            "this page holds no device figures. To fill it, run on a machine with a GPU:\n\n"
            f"```bash\n{COMMAND}\n```\n\n" + how + _what_is_measured(FULL) + offline_install()
        )
    from accelrl.results import provenance_line

    dev = results["device"]
    versions = results.get("versions", {})
    host = results.get("machine", {})
    lines = [head]
    if dev["backend"] != "gpu":
        lines.append(
            f"**Not run on a GPU**: these figures are from the `{dev['backend']}` backend.\n\n"
        )
    lines.append(how)
    lines.append("## Run\n\n")
    lines.append(
        f"- device: {dev['device_kind']} ({dev['backend']}, {dev['local_devices']} local "
        f"device{'s' if dev['local_devices'] != 1 else ''})\n"
    )
    lines.append(
        f"- jax {versions.get('jax')}, jaxlib {versions.get('jaxlib')}, accelrl "
        f"{versions.get('accelrl')}; Python {host.get('python')} on {host.get('system')} "
        f"{host.get('machine')}, {host.get('cpu_count')} CPU cores\n"
    )
    lines.append(
        f"- wall time {results['wall_s']:.0f} s ({results['cpu_s']:.0f} s of process CPU time); "
        "compilation cache: "
        f"{dev.get('compilation_cache') or 'off (compile times are cold)'}\n"
    )
    lines.append(f"- {provenance_line(results)}\n\n")
    plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in results["plan"].items()})
    lines.append(_what_is_measured(plan))
    lines.append(_env_table(results["envs"]))
    lines.append(_training_table(results["training"]))
    lines.append(_members_table(results["members"]))
    lines.append(
        "Program MiB: arguments + outputs + temporaries XLA plans for the timed program. Peak "
        "MiB: the device's peak bytes in use so far in the process (a high-water mark; `-` where "
        "the backend reports none).\n\n"
    )
    lines.append(offline_install())
    return "".join(lines)


NOT_MEASURED = "Not measured in this run.\n\n"


def _env_table(rows: list[dict]) -> str:
    out = "## Environment steps/s\n\n"
    if not rows:
        return out + NOT_MEASURED
    batches = sorted({r["batch"] for r in rows})
    out += "| environment | " + " | ".join(f"B={b:,}" for b in batches) + " | compile s |\n"
    out += "|---|" + "---:|" * (len(batches) + 1) + "\n"
    by_env: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_env.setdefault(r["env"], {})[r["batch"]] = r
    for env_id, cells in by_env.items():
        rates = [_num(cells[b]["steps_per_s"]) if b in cells else "-" for b in batches]
        compile_s = statistics.median(r["compile_s"] for r in cells.values())
        out += f"| {env_id} | " + " | ".join(rates) + f" | {compile_s:.2f} |\n"
    return out + "\nCompile s: median over the batch sizes.\n\n"


def _training_table(rows: list[dict]) -> str:
    out = "## Training steps/s (one member, default config)\n\n"
    if not rows:
        return out + NOT_MEASURED
    out += (
        "| agent | environment | copies | env steps/update | env steps/s | updates/s "
        "| compile s | program MiB | peak MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for r in rows:
        out += (
            f"| {r['agent']} | {r['env']} | {r['num_envs']} | {r['steps_per_update']} | "
            f"{_num(r['steps_per_s'])} | {_num(r['updates_per_s'])} | {r['compile_s']:.2f} | "
            f"{_mib(r['program_bytes'])} | {_mib(r['peak_bytes'])} |\n"
        )
    return out + "\n"


def _members_table(rows: list[dict]) -> str:
    out = f"## Seeds per program ({MEMBERS_TASK[1]} {MEMBERS_TASK[0]})\n\n"
    if not rows:
        return out + NOT_MEASURED
    out += (
        "| members | env steps/s | per member | vs fewest | compile s | program MiB | "
        "peak MiB |\n|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for r in rows:
        per = r["steps_per_s"] / r["members"]
        out += (
            f"| {r['members']} | {_num(r['steps_per_s'])} | {_num(per)} | "
            f"{r['steps_per_s'] / rows[0]['steps_per_s']:.2f}x | {r['compile_s']:.2f} | "
            f"{_mib(r['program_bytes'])} | {_mib(r['peak_bytes'])} |\n"
        )
    return out + "\nVs fewest: total env steps/s over the first row's.\n\n"


def _what_is_measured(plan: Plan) -> str:
    return (
        "## What is measured\n\n"
        f"- environment steps/s of every accelrl id and CartPole-v1 at batches "
        f"{', '.join(f'{b:,}' for b in plan.batches)} (random actions, {plan.env_steps} batched "
        f"steps per call);\n"
        f"- training: environment steps/s of one member of "
        f"{', '.join(f'{a.upper()} on {e}' for e, a in TRAINING)} "
        f"({plan.train_updates} updates per call);\n"
        f"- seeds per program: {', '.join(map(str, plan.members))} vmapped members of "
        f"{MEMBERS_TASK[1].upper()} {MEMBERS_TASK[0]};\n"
        f"- compile times (ahead of time, cold unless a compilation cache is named) and memory; "
        f"every timing is the median of {plan.repeats} calls after one untimed call.\n\n"
    )


# ---------------------------------------------------------------------------------------------
# Command line


def write_page(results_path: Path, page_path: Path) -> str:
    """Rebuild ``page_path`` from ``results_path`` (a missing file: the not-yet-run page)."""
    from accelrl.results import load_results

    results = load_results(results_path) if results_path.exists() else None
    page = render_page(results)
    page_path.parent.mkdir(parents=True, exist_ok=True)
    page_path.write_text(page)
    return page


def main(argv: list[str] | None = None) -> dict | None:
    from accelrl.results import regenerate

    argv = sys.argv[1:] if argv is None else list(argv)
    if regenerate(argv, lambda rec, page: page.write_text(render_page(rec)), prog="bench_device"):
        return None  # --from_results docs/results/gpu.json: the page from the JSON alone
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (scripts/bench/bench_device.py) for the parts measured.",
    )
    p.add_argument("--quick", action="store_true", help="a small plan (under 3 min on 2 CPUs)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for gpu.json and gpu.md (default: docs/ for the full run, with the JSON "
        "under docs/results/; bench_out/device for --quick, which refuses docs/)",
    )
    p.add_argument("--page-only", action="store_true", help="rebuild the page from the JSON")
    p.add_argument("--ids", nargs="+", default=None, help="environment ids (default: all)")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="which parts to run (default: all; the page marks the others as not measured)",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write the results from a tree with uncommitted changes (the page says so)",
    )
    args = p.parse_args(argv)
    from accelrl.results import DirtyTreeError, check_output, git_state, provenance, write_results

    if args.out is None:
        results_path, page_path = (
            (Path("bench_out/device/gpu.json"), Path("bench_out/device/gpu.md"))
            if args.quick
            else (RESULTS, PAGE)
        )
    else:
        results_path, page_path = args.out / "gpu.json", args.out / "gpu.md"
    try:
        check_output(results_path, args.quick, DOCS)
        check_output(page_path, args.quick, DOCS)
    except ValueError as e:
        p.error(str(e))
    if args.page_only:
        if not args.quick and args.out is None and not results_path.exists():
            print(f"no {results_path}: writing the not-yet-run page")
        write_page(results_path, page_path)
        print(f"wrote {page_path}")
        return None

    import jax

    from accelrl.envs import registered_envs

    if not args.quick and jax.default_backend() == "cpu":
        p.error("the full run measures a GPU and jax's backend here is the CPU; use --quick")
    known = [*registered_envs(), "CartPole-v1"]
    env_ids = args.ids or known
    unknown = [e for e in env_ids if e not in known]
    if unknown:
        p.error(f"unknown environment ids {unknown}; choose from {known}")
    command = " ".join([COMMAND, *map(shlex.quote, argv)])
    allow_dirty = args.quick or args.allow_dirty
    if not allow_dirty and git_state()[1] is False:  # refuse before measuring, not after
        p.error("the tree has uncommitted changes: commit them first, or pass --allow-dirty")
    results = {
        **provenance(command),
        "generator": "scripts/bench/bench_device.py",
        "page": "docs/gpu.md",
        "quick": args.quick,
    }
    results.update(run_suite(QUICK if args.quick else FULL, env_ids, args.parts))
    try:
        write_results(results_path, results, allow_dirty=allow_dirty)
    except DirtyTreeError as e:  # the tree changed during the run
        p.error(str(e))
    write_page(results_path, page_path)
    print(f"wrote {results_path} and {page_path} ({results['wall_s']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
