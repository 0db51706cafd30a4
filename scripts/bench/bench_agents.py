"""Benchmark accelrl's agents against rejax and stable-baselines3 at equal hyperparameters.

Two tasks, rl-zoo's hyperparameters as the common ground:

* PPO on CartPole-v1, time until the mean return reaches 475;
* SAC on Pendulum-v1, time until the mean return reaches -200.

Every (framework, task, seed) runs in a fresh subprocess: accelrl in this interpreter's
environment, rejax (with ``gymnax<1``, which its 0.1.x needs) and stable-baselines3 (CPU torch) in
their own virtual environments, created by this script under ``~/.cache/accelrl/venvs``. Each
worker trains in segments of ``eval_every`` environment steps and, between segments, evaluates
``eval_episodes`` episodes with the *stochastic* policy (rejax's only evaluation mode; the same
for all three) on seeds training does not use; evaluation time is excluded from every clock.

Reported per framework (medians over seeds; a seed that never reaches the threshold counts as
infinitely slow):

* ``steady_s``: training time to the threshold, compilation excluded;
* ``e2e_s``: end to end, agent construction and compilation included (interpreter start and
  imports excluded);
* ``seeds_per_hour`` with 1 and 16 vmapped seeds (JAX frameworks; stable-baselines3 runs seeds
  one after another), from the steady-state throughput extrapolated to the full step budget,
  and end to end with one compilation.

Targets (ratios of medians measured in the same run): accelrl's time to the threshold at most
rejax's (steady and end to end), and at least 20x (steady per seed) and 5x (end to end)
faster than stable-baselines3.

Results protocol: each task writes its raw results file (``docs/results/agents_<algo>.json``:
command, commit, tree state, machine, every worker's curve and timings) and renders its block
of its page (PPO: ``docs/agents.md``, SAC: ``docs/sac.md``; ``<!-- bench_agents_<algo>:
begin -->``); ``--from_results PATH`` re-renders a block from its file alone. A tree with
uncommitted changes is refused unless ``--allow_dirty`` (the block then says so); ``--quick``
writes under ``--out_dir`` (default ``/tmp/bench_agents``), never into ``docs/``.

Usage::

    python scripts/bench/bench_agents.py --quick           # 2 seeds, shorter throughput runs
    python scripts/bench/bench_agents.py                   # 5 seeds, the full benchmark
    python scripts/bench/bench_agents.py --setup-only      # create the two venvs
    python scripts/bench/bench_agents.py --from_results docs/results/agents_sac.json

Only the standard library (and ``scripts/bench/_bench.py``, which imports nothing else) is imported at
module level: the same file runs as the worker inside the rejax and stable-baselines3
environments (``--worker``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    from _bench import (
        PeerVenv,
        add_results_options,
        median,
        ratio,
        render_from_results,
        results_record,
        time_fn,
        venv_root,
        write_blocks,
    )
except ImportError:  # a worker in a peer environment (no accelrl) runs this file by path
    from _bench import (
        PeerVenv,
        add_results_options,
        median,
        ratio,
        render_from_results,
        results_record,
        time_fn,
        venv_root,
        write_blocks,
    )

# The foreign frameworks' environments (under $ACCELRL_VENVS or ~/.cache/accelrl/venvs): pip
# requirement lines, installed in order. torch==2.13.0 resolves to a CPU wheel here (a plain
# "torch" would pull CUDA wheels).
VENVS: dict[str, PeerVenv] = {
    "rejax": PeerVenv(venv_root() / "rejax", [["rejax==0.1.3", "gymnax<1", "jax==0.10.2"]]),
    "sb3": PeerVenv(venv_root() / "sb3", [["torch==2.13.0"], ["stable-baselines3"]]),
}

# Common hyperparameters (rl-zoo's; lr annealing linear to 0 over the budget for PPO, clip
# range constant 0.2 since neither JAX framework anneals it).
TASKS: dict[str, dict] = {
    "ppo": dict(
        env="CartPole-v1",
        threshold=475.0,
        total_timesteps=100_000,
        num_envs=8,
        num_steps=32,
        num_minibatches=1,
        epochs=20,
        lr=1e-3,
        anneal_lr=True,
        gamma=0.98,
        gae_lambda=0.8,
        clip=0.2,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        hidden=[64, 64],
        activation="tanh",
        eval_every=5_120,
        eval_episodes=10,
        throughput_steps=5_120,
    ),
    "sac": dict(
        env="Pendulum-v1",
        threshold=-200.0,
        total_timesteps=20_000,
        num_envs=1,
        lr=1e-3,
        buffer_size=20_000,
        batch_size=256,
        learning_starts=100,
        tau=0.005,
        gamma=0.99,
        gradient_steps=1,
        hidden=[256, 256],
        activation="relu",
        eval_every=1_000,
        eval_episodes=10,
        throughput_steps=200,
    ),
}

FRAMEWORKS = ("accelrl", "rejax", "sb3")
GENERATOR = "scripts/bench/bench_agents.py"
PAGES = {"ppo": "docs/agents.md", "sac": "docs/sac.md"}
"""The page each task's block lives on (block ``bench_agents_<algo>``)."""
TARGETS = {"rejax": 1.0, "sb3_steady": 20.0, "sb3_e2e": 5.0}
"""accelrl/rejax time ratio at most 1 (steady and end to end); speed-up over stable-baselines3
at least 20x steady per seed and 5x end to end."""
XLA_CPU_FLAGS = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


# ---------------------------------------------------------------------------------------------
# Workers (run inside each framework's environment; print one JSON line)


def _reached(curve: list, threshold: float) -> dict:
    """First point of ``curve`` (steps, train_s, return, train_cpu_s) at or above the threshold."""
    for steps, train_s, ret, train_cpu_s in curve:
        if ret >= threshold:
            return {"reached": True, "steps": steps, "train_s": train_s, "train_cpu_s": train_cpu_s}
    return {"reached": False, "steps": None, "train_s": None, "train_cpu_s": None}


def _worker_accelrl(algo: str, seed: int, mode: str, num_seeds: int, segments: int) -> dict:
    import jax
    import jax.numpy as jnp

    import accelrl.envs as E
    from accelrl.agents.evaluation import evaluation_key, training_key

    t = TASKS[algo]
    t0, c0 = time.perf_counter(), time.process_time()
    env, env_params = E.make(t["env"])
    if algo == "ppo":
        from accelrl.agents.ppo import PPOConfig, make_ppo

        cfg = PPOConfig(
            num_envs=t["num_envs"],
            num_steps=t["num_steps"],
            num_minibatches=t["num_minibatches"],
            update_epochs=t["epochs"],
            total_timesteps=t["total_timesteps"],
            hidden_sizes=tuple(t["hidden"]),
            activation=t["activation"],
            anneal_lr=t["anneal_lr"],
        )
        agent = make_ppo(cfg, env, env_params)
        hp = agent.default_hparams().replace(
            learning_rate=t["lr"],
            gamma=t["gamma"],
            gae_lambda=t["gae_lambda"],
            clip_eps=t["clip"],
            ent_coef=t["ent_coef"],
            vf_coef=t["vf_coef"],
            max_grad_norm=t["max_grad_norm"],
        )
    else:
        from accelrl.agents.sac import SACConfig, make_sac

        cfg = SACConfig(
            total_timesteps=t["total_timesteps"],
            num_envs=t["num_envs"],
            batch_size=t["batch_size"],
            buffer_size=t["buffer_size"],
            learning_starts=t["learning_starts"],
            gradient_steps=t["gradient_steps"],
            actor_hidden_sizes=tuple(t["hidden"]),
            critic_hidden_sizes=tuple(t["hidden"]),
            activation=t["activation"],
        )
        agent = make_sac(cfg, env, env_params)
        hp = agent.default_hparams().replace(
            actor_lr=t["lr"], critic_lr=t["lr"], alpha_lr=t["lr"], gamma=t["gamma"], tau=t["tau"]
        )
    hp = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hp)
    seg = t["throughput_steps" if mode == "throughput" else "eval_every"] // agent.steps_per_update

    if mode == "throughput":
        keys = jnp.stack([training_key(seed + i) for i in range(num_seeds)])
        hps = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_seeds,)), hp)
        states = jax.jit(jax.vmap(agent.init))(keys, hps)
        run = jax.jit(jax.vmap(agent.run, in_axes=(0, 0, None)), static_argnums=2)
        return _throughput(
            lambda s: run(s, hps, seg),
            lambda: run.lower(states, hps, seg).compile(),
            states,
            t0,
            seg * agent.steps_per_update,
            segments,
            t["total_timesteps"],
            num_seeds,
        )

    state = agent.init(training_key(seed), hp)
    compiled = jax.jit(agent.run, static_argnums=2).lower(state, hp, seg).compile()
    jax.block_until_ready(state)
    setup_s, setup_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    agent.evaluate(state, evaluation_key(seed), t["eval_episodes"], False).block_until_ready()
    curve, train_s, train_cpu_s, steps = [], 0.0, 0.0, 0
    while steps < t["total_timesteps"]:
        timing = time_fn(compiled, state, hp, warmup=0, repeats=1)
        state, metrics = timing.result
        train_s += timing.total
        train_cpu_s += timing.cpu_total
        steps += seg * agent.steps_per_update
        ret = float(
            agent.evaluate(
                state, jax.random.fold_in(evaluation_key(seed), steps), t["eval_episodes"], False
            ).mean()
        )
        curve.append((steps, train_s, ret, train_cpu_s))
        if ret >= t["threshold"]:
            break
    return {
        "setup_s": setup_s,
        "setup_cpu_s": setup_cpu_s,
        "curve": curve,
        **_reached(curve, t["threshold"]),
    }


def _throughput(step, compile_fn, states, t0, seg_steps, segments, budget, num_seeds) -> dict:
    """Steady-state steps/s of ``step`` (a segment of ``seg_steps`` steps per seed)."""
    t1 = time.perf_counter()
    compile_s = time_fn(compile_fn, warmup=0, repeats=1).total

    def segment():
        nonlocal states
        states, _ = step(states)
        return states

    # warm twice: the first call's outputs may differ from the initial state in weak types, and
    # the second call would then compile again (inside the timed loop)
    timing = time_fn(segment, warmup=2, repeats=segments)
    dt, dc = timing.total, timing.cpu_total
    sps_per_seed = segments * seg_steps / dt
    run_s = budget / sps_per_seed
    return {
        "num_seeds": num_seeds,
        "compile_s": compile_s,
        "steps_per_s_per_seed": sps_per_seed,
        "seeds_per_hour": 3600.0 * num_seeds / run_s,
        "seeds_per_hour_e2e": 3600.0 * num_seeds / (run_s + compile_s),
        "setup_s": t1 - t0,
        "cpu_s_per_step_per_seed": dc / (segments * seg_steps * num_seeds),
    }


def _worker_rejax(algo: str, seed: int, mode: str, num_seeds: int, segments: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax
    from rejax import PPO, SAC
    from rejax.evaluate import evaluate

    t = TASKS[algo]
    t0, c0 = time.perf_counter(), time.process_time()
    seg_steps = t["throughput_steps" if mode == "throughput" else "eval_every"]
    common = dict(
        env=t["env"],
        total_timesteps=seg_steps,
        eval_freq=seg_steps,
        skip_initial_evaluation=True,
        gamma=t["gamma"],
        num_envs=t["num_envs"],
    )
    if algo == "ppo":
        iters = t["total_timesteps"] // (t["num_envs"] * t["num_steps"])
        grad_steps = iters * t["epochs"] * t["num_minibatches"]
        lr = optax.linear_schedule(t["lr"], 0.0, grad_steps) if t["anneal_lr"] else t["lr"]
        algo_obj = PPO.create(
            **common,
            num_steps=t["num_steps"],
            num_epochs=t["epochs"],
            num_minibatches=t["num_minibatches"],
            learning_rate=lr,
            gae_lambda=t["gae_lambda"],
            clip_eps=t["clip"],
            ent_coef=t["ent_coef"],
            vf_coef=t["vf_coef"],
            max_grad_norm=t["max_grad_norm"],
            agent_kwargs={"activation": t["activation"], "hidden_layer_sizes": tuple(t["hidden"])},
        )
        spu = t["num_envs"] * t["num_steps"]
    else:
        algo_obj = SAC.create(
            **common,
            learning_rate=t["lr"],
            buffer_size=t["buffer_size"],
            batch_size=t["batch_size"],
            fill_buffer=t["learning_starts"],
            polyak=1.0 - t["tau"],
            num_epochs=t["gradient_steps"],
            hidden_layer_sizes=tuple(t["hidden"]),
            agent_kwargs={"activation": t["activation"]},
        )
        spu = t["num_envs"]
    # Evaluation happens outside the timed segments (same protocol as the other frameworks).
    algo_obj = algo_obj.replace(eval_callback=lambda a, ts, rng: jnp.zeros(()))
    max_steps = algo_obj.env_params.max_steps_in_episode

    def segment(ts):
        return algo_obj.train(train_state=ts)

    if mode == "throughput":
        keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
        states = jax.jit(jax.vmap(algo_obj.init_state))(keys)
        run = jax.jit(jax.vmap(segment))
        return _throughput(
            run,
            lambda: run.lower(states).compile(),
            states,
            t0,
            seg_steps,
            segments,
            t["total_timesteps"],
            num_seeds,
        )

    ts = jax.jit(algo_obj.init_state)(jax.random.PRNGKey(seed))
    compiled = jax.jit(segment).lower(ts).compile()
    jax.block_until_ready(ts)
    setup_s, setup_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    @jax.jit
    def eval_fn(ts, key):
        _, returns = evaluate(
            algo_obj.make_act(ts),
            key,
            algo_obj.env,
            algo_obj.env_params,
            t["eval_episodes"],
            max_steps,
        )
        return returns.mean()

    eval_key = jax.random.PRNGKey(10_000 + seed)
    eval_fn(ts, eval_key).block_until_ready()
    curve, train_s, train_cpu_s, steps = [], 0.0, 0.0, 0
    while steps < t["total_timesteps"]:
        timing = time_fn(compiled, ts, warmup=0, repeats=1)
        ts, _ = timing.result
        train_s += timing.total
        train_cpu_s += timing.cpu_total
        steps += t["eval_every"] // spu * spu
        ret = float(eval_fn(ts, jax.random.fold_in(eval_key, steps)))
        curve.append((steps, train_s, ret, train_cpu_s))
        if ret >= t["threshold"]:
            break
    return {
        "setup_s": setup_s,
        "setup_cpu_s": setup_cpu_s,
        "curve": curve,
        **_reached(curve, t["threshold"]),
    }


def _worker_sb3(algo: str, seed: int, mode: str, num_seeds: int, segments: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    if algo == "ppo":
        torch.set_num_threads(1)  # 64x64 MLPs: one thread is faster than two on 2 cores
    t = TASKS[algo]
    t0, c0 = time.perf_counter(), time.process_time()
    env = make_vec_env(t["env"], n_envs=t["num_envs"], seed=seed)
    if algo == "ppo":
        lr = (lambda progress: progress * t["lr"]) if t["anneal_lr"] else t["lr"]
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=t["num_steps"],
            batch_size=t["num_envs"] * t["num_steps"] // t["num_minibatches"],
            n_epochs=t["epochs"],
            learning_rate=lr,
            gamma=t["gamma"],
            gae_lambda=t["gae_lambda"],
            clip_range=t["clip"],
            ent_coef=t["ent_coef"],
            vf_coef=t["vf_coef"],
            max_grad_norm=t["max_grad_norm"],
            policy_kwargs={"net_arch": {"pi": t["hidden"], "vf": t["hidden"]}},
            seed=seed,
            device="cpu",
        )
    else:
        model = SAC(
            "MlpPolicy",
            env,
            learning_rate=t["lr"],
            buffer_size=t["buffer_size"],
            batch_size=t["batch_size"],
            learning_starts=t["learning_starts"],
            tau=t["tau"],
            gamma=t["gamma"],
            gradient_steps=t["gradient_steps"],
            train_freq=1,
            policy_kwargs={"net_arch": t["hidden"], "activation_fn": torch.nn.ReLU},
            seed=seed,
            device="cpu",
        )
    setup_s, setup_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    eval_env = Monitor(gym.make(t["env"]))
    eval_env.reset(seed=10_000 + seed)

    class EvalStop(BaseCallback):
        """Pauses the clock every ``eval_every`` steps (after that update), evaluates, stops."""

        def __init__(self):
            super().__init__()
            self.curve, self.eval_s, self.eval_cpu_s, self.stop = [], 0.0, 0.0, False

        def _on_training_start(self):
            self.t_start, self.c_start = time.perf_counter(), time.process_time()

        def _on_rollout_start(self):
            n = self.model.num_timesteps
            if n == 0 or n % t["eval_every"] != 0 or (self.curve and self.curve[-1][0] == n):
                return
            t1, c1 = time.perf_counter(), time.process_time()
            train_s = t1 - self.t_start - self.eval_s
            train_cpu_s = c1 - self.c_start - self.eval_cpu_s
            mean, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=t["eval_episodes"], deterministic=False
            )
            self.curve.append((n, train_s, float(mean), train_cpu_s))
            self.stop = mean >= t["threshold"]
            self.eval_s += time.perf_counter() - t1
            self.eval_cpu_s += time.process_time() - c1

        def _on_step(self):
            return not self.stop

    cb = EvalStop()
    if mode == "throughput":
        steps = t["throughput_steps"] * (segments + 1)
        timing = time_fn(lambda: model.learn(total_timesteps=steps), warmup=0, repeats=1)
        sps = steps / timing.total
        cpu_per_step = timing.cpu_total / steps
        run_s = t["total_timesteps"] / sps
        return {
            "num_seeds": 1,
            "compile_s": 0.0,
            "steps_per_s_per_seed": sps,
            "seeds_per_hour": 3600.0 / run_s,
            "seeds_per_hour_e2e": 3600.0 / (run_s + setup_s),
            "setup_s": setup_s,
            "cpu_s_per_step_per_seed": cpu_per_step,
        }
    # one extra eval_every so the last segment's evaluation runs at a rollout start
    model.learn(total_timesteps=t["total_timesteps"] + t["eval_every"], callback=cb)
    curve = [c for c in cb.curve if c[0] <= t["total_timesteps"]]
    return {
        "setup_s": setup_s,
        "setup_cpu_s": setup_cpu_s,
        "curve": curve,
        **_reached(curve, t["threshold"]),
    }


WORKERS = {"accelrl": _worker_accelrl, "rejax": _worker_rejax, "sb3": _worker_sb3}


# ---------------------------------------------------------------------------------------------
# Orchestration


def run_worker(
    framework: str, algo: str, seed: int, mode: str, num_seeds: int, segments: int, timeout: float
) -> dict:
    script = os.path.abspath(__file__)
    args = [
        "--worker",
        framework,
        "--algos",
        algo,
        "--seed",
        str(seed),
        "--mode",
        mode,
        "--num-seeds",
        str(num_seeds),
        "--segments",
        str(segments),
    ]
    env = {"PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # XLA:CPU (jax 0.10.2) can deadlock executing vmapped SAC with hidden widths >= 64 under its
    # concurrency-optimised scheduler; both JAX frameworks run with it off.
    env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_CPU_FLAGS).strip()
    run = dict(capture_output=True, text=True, timeout=timeout)
    try:
        if framework == "accelrl":
            proc = subprocess.run([sys.executable, script, *args], env={**os.environ, **env}, **run)
        else:
            proc = VENVS[framework].run(*args, script=script, env=env, **run)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    return json.loads(lines[-1])


PEER_PACKAGES = {"rejax": "rejax", "sb3": "stable-baselines3"}


def peer_version(framework: str) -> str | None:
    """The installed version of a peer framework in its virtual environment (None if unknown)."""
    code = f"import importlib.metadata as m; print(m.version({PEER_PACKAGES[framework]!r}))"
    try:
        proc = VENVS[framework].run(code=code, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def summarise(runs: list[dict]) -> dict:
    """Medians over seeds; unreached or failed seeds count as infinitely slow."""
    steady = [r["train_s"] if r.get("reached") else math.inf for r in runs]
    e2e = [r["setup_s"] + r["train_s"] if r.get("reached") else math.inf for r in runs]
    steps = [r["steps"] if r.get("reached") else math.inf for r in runs]
    steady_cpu = [r["train_cpu_s"] if r.get("reached") else math.inf for r in runs]
    e2e_cpu = [r["setup_cpu_s"] + r["train_cpu_s"] if r.get("reached") else math.inf for r in runs]
    return {
        "seeds": len(runs),
        "reached": sum(bool(r.get("reached")) for r in runs),
        "steady_s": median(steady),
        "e2e_s": median(e2e),
        "steps": median(steps),
        "steady_cpu_s": median(steady_cpu),
        "e2e_cpu_s": median(e2e_cpu),
        "errors": [r["error"] for r in runs if "error" in r],
    }


def _fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "not reached"
    return f"{x:,.{digits}f}"


def task_ratios(summary: dict, throughput: dict) -> dict[str, float]:
    """Ratios of medians of one task's run (NaN where a framework is missing or never reached
    the threshold)."""

    def get(fw, key):
        return summary.get(fw, {}).get(key, math.nan)

    def sph(fw, n):
        return throughput.get(fw, {}).get(str(n), {}).get("seeds_per_hour", math.nan)

    return {
        "accelrl_over_rejax_steady": ratio(get("accelrl", "steady_s"), get("rejax", "steady_s")),
        "accelrl_over_rejax_e2e": ratio(get("accelrl", "e2e_s"), get("rejax", "e2e_s")),
        "sb3_over_accelrl_steady": ratio(get("sb3", "steady_s"), get("accelrl", "steady_s")),
        "sb3_over_accelrl_e2e": ratio(get("sb3", "e2e_s"), get("accelrl", "e2e_s")),
        "sb3_over_accelrl_steady_16": ratio(sph("accelrl", 16), sph("sb3", 1)),
        "accelrl_over_rejax_steady_cpu": ratio(
            get("accelrl", "steady_cpu_s"), get("rejax", "steady_cpu_s")
        ),
        "sb3_over_accelrl_steady_cpu": ratio(
            get("sb3", "steady_cpu_s"), get("accelrl", "steady_cpu_s")
        ),
        "sb3_over_accelrl_e2e_cpu": ratio(get("sb3", "e2e_cpu_s"), get("accelrl", "e2e_cpu_s")),
        "accelrl_over_rejax_seeds_per_hour_16": ratio(sph("accelrl", 16), sph("rejax", 16)),
    }


def task_targets(ratios: dict[str, float]) -> list[dict]:
    """The four targets of one task, judged on its ratios (:data:`TARGETS`); a NaN ratio (a
    framework missing or never at the threshold) is not met."""

    def row(name, value, target, at_most):
        ok = math.isfinite(value) and (value <= target if at_most else value >= target)
        return {"name": name, "value": value, "target": target, "at_most": at_most, "met": ok}

    r = ratios
    return [
        row("accelrl/rejax time, steady", r["accelrl_over_rejax_steady"], TARGETS["rejax"], True),
        row("accelrl/rejax time, end to end", r["accelrl_over_rejax_e2e"], TARGETS["rejax"], True),
        row(
            "speed-up over SB3, steady", r["sb3_over_accelrl_steady"], TARGETS["sb3_steady"], False
        ),
        row("speed-up over SB3, end to end", r["sb3_over_accelrl_e2e"], TARGETS["sb3_e2e"], False),
    ]


def render_task(record: dict) -> str:
    """One task's block (markdown) from its results record (pure: the JSON alone)."""
    from accelrl.results import provenance_line, target_line

    t, algo = record["task"], record["algo"]
    lines = [
        f"`{record['command']}`: {algo.upper()} on {t['env']}, time until the stochastic "
        f"policy's mean return over {t['eval_episodes']} episodes reaches {t['threshold']:g} "
        f"(evaluated every {t['eval_every']:,} steps, budget {t['total_timesteps']:,}); "
        f"medians over {record['num_seeds']} seeds, each in a fresh process; a seed that never "
        "reaches it counts as infinitely slow. Seeds/h: steady-state throughput over the whole "
        f"budget with 1 and 16 vmapped seeds. {record['host']['cpus']} CPUs, "
        + (
            f"load average {record['host']['load_start'][0]:.1f} at the start, "
            f"{record['host']['load_end'][0]:.1f} at the end; {record['wall_s']:.0f} s wall."
            if record["host"].get("load_start")
            else "load not recorded."
        ),
        "",
        "| framework | reached | steps | steady s | end-to-end s | steady CPU s | e2e CPU s "
        "| seeds/h (1) | seeds/h (16) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fw, s in record["summary"].items():
        tp = record["throughput"].get(fw, {})
        sp1 = tp.get("1", {}).get("seeds_per_hour")
        sp16 = tp.get("16", {}).get("seeds_per_hour")
        name = {"accelrl": "accelrl", "rejax": "rejax", "sb3": "stable-baselines3"}[fw]
        version = record.get("versions_peer", {}).get(fw)
        lines.append(
            f"| {name}{' ' + version if version else ''} | {s['reached']}/{s['seeds']} | "
            f"{_fmt(s['steps'], 0)} | {_fmt(s['steady_s'])} | {_fmt(s['e2e_s'])} | "
            f"{_fmt(s['steady_cpu_s'])} | {_fmt(s['e2e_cpu_s'])} | {_fmt(sp1, 0)} | "
            f"{_fmt(sp16, 0)} |"
        )
    r = record["ratios"]
    lines += [
        "",
        f"In process CPU seconds (less sensitive to a shared machine): accelrl/rejax "
        f"{_fmt(r['accelrl_over_rejax_steady_cpu'], 2)}, SB3/accelrl steady "
        f"{_fmt(r['sb3_over_accelrl_steady_cpu'], 1)}x, end to end "
        f"{_fmt(r['sb3_over_accelrl_e2e_cpu'], 1)}x; with 16 vmapped seeds accelrl runs "
        f"{_fmt(r['sb3_over_accelrl_steady_16'], 1)}x SB3's seeds/h.",
        "",
        "Targets (ratios of the medians above, measured in this run):",
    ]
    for tg in record["targets"]:
        bound = f"{'<=' if tg['at_most'] else '>='} {tg['target']:g}{'' if tg['at_most'] else 'x'}"
        value = (
            _fmt(tg["value"], 2 if tg["at_most"] else 1)
            if math.isfinite(tg["value"])
            else "no ratio: a framework not run or never at the threshold"
        )
        lines.append(target_line(tg["name"], tg["met"], f"{value}, target {bound}"))
    errors = [f"{fw}: {e}" for fw, s in record["summary"].items() for e in s["errors"]]
    if errors:
        lines += ["", "Errors: " + "; ".join(e[:200] for e in errors)]
    lines += ["", provenance_line(record)]
    return "\n".join(lines)


def render(record: dict) -> dict[str, str]:
    """``{block name: markdown}`` of one task's results record."""
    if record.get("algo") not in PAGES:
        raise ValueError(f"a bench_agents record names its task ({list(PAGES)})")
    return {f"bench_agents_{record['algo']}": render_task(record)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 seeds and short throughput runs")
    p.add_argument(
        "--seeds", type=int, default=None, help="seeds per framework (default 5, quick 2)"
    )
    p.add_argument("--algos", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=list(FRAMEWORKS))
    p.add_argument(
        "--vmap-seeds", nargs="+", type=int, default=[1, 16], help="seed counts for seeds/hour"
    )
    p.add_argument(
        "--out_dir",
        type=Path,
        default=None,
        help="where agents_<algo>.json goes (default docs/results, which also renders the "
        "pages' blocks; quick: /tmp/bench_agents, never docs/)",
    )
    add_results_options(p)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    p.add_argument("--setup-only", action="store_true", help="create the venvs and exit")
    p.add_argument("--throughput-only", action="store_true", help="skip the time-to-threshold runs")
    # worker mode (internal)
    p.add_argument("--worker", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument(
        "--mode", choices=["threshold", "throughput"], default="threshold", help=argparse.SUPPRESS
    )
    p.add_argument("--num-seeds", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--segments", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        out = WORKERS[args.worker](
            args.algos[0], args.seed, args.mode, args.num_seeds, args.segments
        )
        print(json.dumps(out), flush=True)
        return
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return
    from accelrl.results import REPO, check_output, write_results

    docs = REPO / "docs" / "results"
    out_dir = args.out_dir or (Path("/tmp/bench_agents") if args.quick else docs)
    check_output(out_dir, args.quick)
    allow_dirty = args.allow_dirty or args.quick
    base = results_record(["python", GENERATOR, *argv], GENERATOR, PAGES[args.algos[0]])
    if base["clean_tree"] is False and not allow_dirty and not args.setup_only:
        raise SystemExit("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    for fw in args.frameworks:
        if fw != "accelrl":
            VENVS[fw].ensure()
    if args.setup_only:
        return
    n_seeds = args.seeds or (2 if args.quick else 5)
    segments = 1 if args.quick else 3
    for algo in args.algos:
        t_algo = time.perf_counter()
        host = {"cpus": os.cpu_count(), "platform": sys.platform, "load_start": os.getloadavg()}
        runs: dict[str, list] = {}
        throughput: dict[str, dict] = {}
        for fw in args.frameworks:
            runs[fw] = []
            for seed in range(0 if args.throughput_only else n_seeds):
                t1 = time.perf_counter()
                r = run_worker(fw, algo, seed, "threshold", 1, segments, args.timeout)
                runs[fw].append(r)
                status = r.get("error") or (
                    f"reached at {r['steps']} steps, {r['train_s']:.1f} s train + "
                    f"{r['setup_s']:.1f} s setup"
                    if r.get("reached")
                    else "not reached"
                )
                print(
                    f"[{algo}/{fw}] seed {seed}: {status} ({time.perf_counter() - t1:.0f} s wall)",
                    flush=True,
                )
            throughput[fw] = {}
            for n in [1] if fw == "sb3" else args.vmap_seeds:
                r = run_worker(fw, algo, 0, "throughput", n, segments, args.timeout)
                throughput[fw][str(n)] = r
                print(
                    f"[{algo}/{fw}] throughput {n} seed(s): "
                    f"{r.get('error') or _fmt(r['seeds_per_hour'], 0) + ' seeds/h'}",
                    flush=True,
                )
        summary = {fw: summarise(rs) for fw, rs in runs.items()}
        ratios = task_ratios(summary, throughput)
        host["load_end"] = os.getloadavg()
        record = {
            **base,
            "page": PAGES[algo],
            "algo": algo,
            "task": TASKS[algo],
            "num_seeds": n_seeds,
            "quick": args.quick,
            "throughput_only": args.throughput_only,
            "host": host,
            "versions_peer": {fw: peer_version(fw) for fw in args.frameworks if fw in VENVS},
            "runs": runs,
            "summary": summary,
            "throughput": throughput,
            "ratios": ratios,
            "targets": task_targets(ratios),
            "wall_s": time.perf_counter() - t_algo,
        }
        path = write_results(out_dir / f"agents_{algo}.json", record, allow_dirty=allow_dirty)
        blocks = render(record)
        print("\n".join(blocks.values()), flush=True)
        print(f"wrote {path}", flush=True)
        if Path(out_dir).resolve() == docs.resolve():
            write_blocks(REPO / PAGES[algo], blocks)
            print(f"rendered {PAGES[algo]}", flush=True)


if __name__ == "__main__":
    main()
