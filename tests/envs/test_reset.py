"""Reset strategies: per-episode tasks credited exactly, update-boundary work counted under a
seed vmap, stored states restored bit for bit and truncated after their step limit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs import EpisodeStatistics, VecEnv, make
from accelrl.envs.reset import ResetEnv, ResetStrategy, Starts, reset_copies
from accelrl.envs.vec import VecEnvState

B = 5


@struct.dataclass
class TaskState(environment.EnvState):
    task: jax.Array  # the task this episode started with


@struct.dataclass
class TaskParams(environment.EnvParams):
    task: float = 0.0
    length: int = 3
    max_steps_in_episode: int = 100


class TaskEnv(environment.Environment):
    """Reward = the params' task every step; obs = [task the episode started with, time];
    the episode terminates after ``params.length`` steps."""

    @property
    def default_params(self):
        return TaskParams()

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(params.task), state.time >= params.length, {}

    def reset_env(self, key, params):
        state = TaskState(time=jnp.int32(0), task=jnp.float32(params.task))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([state.task, state.time.astype(jnp.float32)])

    def is_terminal(self, state, params):
        return state.time >= params.length

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1e6, (2,), jnp.float32)


@struct.dataclass
class TaskIdState:
    next_id: jax.Array  # i32[]
    tasks: jax.Array  # f32[H] credited task of each finished episode
    returns: jax.Array  # f32[H] its return
    count: jax.Array  # i32[] finished episodes recorded


class TaskIds(ResetStrategy):
    """Each fresh start gets the next task id; episode length 2 + id % 4 (copies finish at
    different steps); the return of every finished episode is credited to its task."""

    name = "task_ids"
    H = 256

    def init(self, key, env, params, num_envs):
        return TaskIdState(jnp.int32(1), jnp.zeros(self.H), jnp.zeros(self.H), jnp.int32(0))

    def starts(self, key, state, env, params, mask):
        ids = state.next_id + jnp.cumsum(mask.astype(jnp.int32)) - 1
        params = params.replace(task=ids.astype(jnp.float32), length=2 + ids % 4)
        obs, env_state = reset_copies(env, key, params)
        return Starts(obs, env_state, params), state.replace(next_id=state.next_id + mask.sum())

    def observe(self, state, record):
        slot = state.count + jnp.cumsum(record.done.astype(jnp.int32)) - 1
        slot = jnp.where(record.done, slot, self.H)  # out of range: dropped
        return state.replace(
            tasks=state.tasks.at[slot].set(record.task.task, mode="drop"),
            returns=state.returns.at[slot].set(record.episode_return, mode="drop"),
            count=state.count + record.done.sum(),
        )


def test_every_step_uses_its_episodes_task_and_returns_are_credited_exactly():
    env = TaskEnv()
    venv = VecEnv(env, B, TaskIds())
    obs, state = venv.reset(jax.random.key(0), env.default_params)
    assert isinstance(state, VecEnvState)
    step = jax.jit(venv.step)
    finishes = []
    for t in range(30):
        before = np.asarray(obs)
        obs, state, reward, term, trunc, info = step(
            jax.random.key(t), state, jnp.zeros(B, jnp.int32), None
        )
        # the reward is the params' task of this step: it must be the task the episode started with
        np.testing.assert_array_equal(np.asarray(reward), before[:, 0])
        finishes.append(np.asarray(info["done"]))
    finishes = np.array(finishes)
    assert len({tuple(np.flatnonzero(f)) for f in finishes if f.any()}) > 1  # different steps
    n = int(state.strategy.count)
    tasks, returns = np.asarray(state.strategy.tasks[:n]), np.asarray(state.strategy.returns[:n])
    assert n == finishes.sum() and len(set(tasks.tolist())) == n  # each task credited once
    np.testing.assert_array_equal(returns, tasks * (2 + tasks.astype(int) % 4))


def test_default_strategy_keeps_the_plain_state_and_subclasses_do_not():
    env, params = make("CartPole-v1")
    assert VecEnv(env, 2).plain and VecEnv(env, 2, ResetEnv()).plain
    assert not VecEnv(env, 2, TaskIds()).plain
    with pytest.raises(TypeError, match="ResetStrategy"):
        VecEnv(env, 2, strategy=object())


@struct.dataclass
class RefitState:
    refits: jax.Array


class CountingRefit(ResetStrategy):
    """A 'refit' every R updates at the update boundary; the host counts its executions."""

    calls: list = []

    def __init__(self, every: int):
        self.every = every

    def init(self, key, env, params, num_envs):
        return RefitState(jnp.int32(0))

    def on_update(self, state, update_index):
        def refit(s):
            jax.debug.callback(lambda: CountingRefit.calls.append(1))
            return s.replace(refits=s.refits + 1)

        return jax.lax.cond(update_index % self.every == 0, refit, lambda s: s, state)

    def metrics(self, state):
        return {"refits": state.refits.astype(jnp.float32)}


def test_update_boundary_work_runs_once_per_r_updates_under_a_seed_vmap():
    from accelrl.agents import PPOConfig, Runner, make_ppo

    env = TaskEnv()
    venv = VecEnv(env, 4, CountingRefit(every=2))
    agent = make_ppo(
        PPOConfig(num_envs=4, num_steps=4, num_minibatches=1, update_epochs=1, total_timesteps=128),
        venv,
    )
    CountingRefit.calls.clear()
    result = Runner(agent, [0, 1, 2], segments=2, progress=False).train()  # 8 updates, 3 seeds
    np.testing.assert_array_equal(result.metrics["refits"][:, -1], [4, 4, 4])
    np.testing.assert_array_equal(result.metrics["refits"][0], [1, 1, 2, 2, 3, 3, 4, 4])
    # a real branch: executed at updates 0, 2, 4, 6 only (a select would run it at all 8)
    assert len(CountingRefit.calls) in (4, 4 * 3), len(CountingRefit.calls)


@struct.dataclass
class BankState:
    served: jax.Array  # i32[] snapshot starts given


class OneSnapshot(ResetStrategy):
    """Every start is the same stored state, truncated after ``limit`` steps."""

    def __init__(self, obs, env_state, limit):
        self.obs, self.env_state, self.limit = obs, env_state, limit

    def init(self, key, env, params, num_envs):
        return BankState(jnp.int32(0))

    def starts(self, key, state, env, params, mask):
        n = mask.shape[0]
        rep = lambda x: jnp.broadcast_to(x, (n,) + x.shape)  # noqa: E731
        with jax.enable_x64(True):
            env_state = jax.tree.map(rep, self.env_state)
        return Starts(rep(self.obs), env_state, params, jnp.full(n, self.limit)), state.replace(
            served=state.served + mask.sum()
        )

    def metrics(self, state):
        return {"snapshot_starts": state.served.astype(jnp.float32)}


def _hermite(state):
    return state.env.hermite if hasattr(state, "env") else state.hermite


def test_snapshot_start_restores_float64_state_bit_for_bit_and_truncates():
    env, params = make("ThreeBody-v0")
    plain = VecEnv(env, 1)
    obs, st = plain.reset(jax.random.key(3), params)
    for t in range(2):  # a state in the middle of an episode
        obs, st, *_ = plain.step(jax.random.key(10 + t), st, jnp.array([4]), params)
    one = jax.tree.map(lambda x: x[0], st)
    assert {x.dtype for x in jax.tree.leaves(_hermite(one))} == {np.dtype("float64")}
    venv = EpisodeStatistics(VecEnv(env, 2, OneSnapshot(obs[0], one, limit=3)))
    obs2, state = venv.reset(jax.random.key(0), params)
    for a, b in zip(jax.tree.leaves(state.inner.env), jax.tree.leaves(st), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[0])
    for t in range(3):
        obs2, state, r, term, trunc, info = venv.step(
            jax.random.key(t), state, jnp.array([4, 4]), params
        )
        assert not bool(term.any())
        assert bool(trunc.all()) == (t == 2), (t, trunc)  # truncated, not terminated, after 3 steps
    assert int(venv.metrics(state)["snapshot_starts"]) == 4  # 2 at reset, 2 after the limit
    # the stored state came back again after the truncation, bit for bit
    for a, b in zip(jax.tree.leaves(state.inner.env), jax.tree.leaves(st), strict=True):
        np.testing.assert_array_equal(np.asarray(a)[1], np.asarray(b)[0])


def test_strategy_state_survives_a_checkpoint_and_resume(tmp_path, interrupt_run):
    from accelrl.agents import PPOConfig, Runner, make_ppo

    env = TaskEnv()
    agent = make_ppo(
        PPOConfig(num_envs=3, num_steps=4, num_minibatches=1, update_epochs=1, total_timesteps=48),
        VecEnv(env, 3, TaskIds()),
    )
    full = Runner(agent, [0, 1], segments=2, progress=False).train()

    interrupt_run(agent, [0, 1], tmp_path)
    runner = Runner(agent, [0, 1], out_dir=tmp_path, segments=2, progress=False)
    state, _ = runner.restore()
    assert int(state.env_state.inner.strategy.count[0]) > 0  # the history came back
    resumed = runner.train(state)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
