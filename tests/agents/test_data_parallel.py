"""Runner(data_parallel=D): one member's environment copies over 2 (fake) devices match 1 device.

The 2-device run is a subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=2`` must be
set before JAX starts); the 1-device reference runs in this process, where one member is never
sharded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from accelrl.agents.ppo import PPOConfig, make_ppo
from accelrl.agents.runner import Runner
from accelrl.envs import make

CONFIG = dict(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2, total_timesteps=128)

TEACHER = textwrap.dedent(
    """
    def teacher_agent(config):
        # PPO on Pendulum whose copies get their tasks from ALP-GMM (refit every update)
        from accelrl.agents import build
        from accelrl.curricula import ALPGMM, task_space
        from accelrl.envs import VecEnv

        space = task_space("pendulum_dynamics")
        env, params = space.make()
        params = params.replace(max_steps_in_episode=20)
        teacher = ALPGMM(space, fit_rate=4, ks=(2,), refit_every=1, history=32)
        overrides = {**config, "num_steps": 20, "total_timesteps": 320}
        return build(VecEnv(env, config["num_envs"], teacher), "ppo", overrides,
                     env_params=params, env_id="Pendulum-v1")[0]
    """
)

CHILD = TEACHER + textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from accelrl.agents.ppo import PPOConfig, make_ppo
    from accelrl.agents.runner import Runner
    from accelrl.envs import make

    config, teacher = json.loads(sys.argv[1]), sys.argv[3] == "teacher"
    if teacher:
        agent = teacher_agent(config)
    else:
        env, params = make("CartPole-v1")
        agent = make_ppo(PPOConfig(**config), env, params)
    dp = jax.local_device_count()
    runner = Runner(agent, [3], progress=False, segments=2, data_parallel=dp)
    res = runner.train()
    if teacher:
        leaves = jax.tree.leaves(agent.env.strategy_state(res.state.env_state))
        np.savez(sys.argv[2] + ".strategy.npz", *leaves)
    obs, kernel = res.state.obs, res.state.params["params"]["actor"]["Dense_0"]["kernel"]
    np.savez(sys.argv[2], **res.metrics)
    env, params = make("CartPole-v1")
    odd = make_ppo(PPOConfig(**{**json.loads(sys.argv[1]), "num_envs": 3}), env, params)
    try:
        Runner(odd, [3], progress=False, data_parallel=2)
        refused = ""
    except ValueError as e:
        refused = str(e)
    print(json.dumps({
        "devices": jax.local_device_count(),
        "mesh": dict(runner._mesh.shape) if runner._mesh is not None else None,
        "obs_spec": [str(a) for a in getattr(obs.sharding, "spec", ())],
        "obs_shard": list(obs.addressable_shards[0].data.shape),
        "kernel_spec": [str(a) for a in getattr(kernel.sharding, "spec", ())],
        "kernel_devices": len(kernel.sharding.device_set),
        "programs": runner._run._cache_size(),
        "refused": refused,
    }))
    """
)


def _child(devices: int, out, kind: str = "plain") -> dict:
    """Run CHILD on ``devices`` fake devices (data_parallel = devices); its printed facts."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(CONFIG), str(out), kind],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_one_member_over_two_devices_matches_one_device(tmp_path):
    out = tmp_path / "dp2.npz"
    info = _child(2, out)
    assert info["devices"] == 2 and info["mesh"] == {"seeds": 1, "data": 2}
    # The copies are split (2 of 4 per device), the parameters replicated on both devices.
    assert info["obs_spec"][:2] == ["seeds", "data"] and info["obs_shard"] == [1, 2, 4]
    assert info["kernel_spec"] == ["seeds"] and info["kernel_devices"] == 2
    assert info["programs"] == 1  # every segment ran the same program
    assert info["refused"].startswith("data_parallel=2 does not divide num_envs=3")
    sharded = dict(np.load(out))

    env1, params = make("CartPole-v1")
    agent = make_ppo(PPOConfig(**CONFIG), env1, params)
    ref = Runner(agent, [3], progress=False, segments=2).train().metrics
    assert set(sharded) == set(ref)
    assert ref["loss"].shape == (1, agent.num_updates)
    for name in ref:
        np.testing.assert_allclose(sharded[name], ref[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_a_teachers_state_stays_one_per_member_across_the_data_axis(tmp_path):
    """ALP-GMM (refit at every update boundary) under data_parallel=2 vs 1 device: the same
    metrics and the same teacher state (one per member, not one per device)."""
    outs = [tmp_path / f"dp{d}.npz" for d in (2, 1)]
    infos = [_child(d, out, "teacher") for d, out in zip((2, 1), outs, strict=True)]
    assert infos[0]["mesh"] == {"seeds": 1, "data": 2} and infos[1]["mesh"] is None
    sharded, ref = (dict(np.load(o)) for o in outs)
    assert "teacher_refits" in ref and np.all(ref["teacher_refits"][:, -1] >= 1)
    for name in ref:
        np.testing.assert_allclose(sharded[name], ref[name], rtol=1e-4, atol=1e-5, err_msg=name)
    s_sharded, s_ref = (np.load(f"{o}.strategy.npz") for o in outs)
    assert len(s_ref.files) > 0 and s_sharded.files == s_ref.files
    for name in s_ref.files:
        assert s_sharded[name].shape == s_ref[name].shape and s_ref[name].shape[0] == 1
        np.testing.assert_allclose(s_sharded[name], s_ref[name], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(jax.local_device_count() != 1, reason="needs exactly one local device")
def test_data_parallel_must_be_positive_and_divide_the_devices():
    env, params = make("CartPole-v1")
    agent = make_ppo(PPOConfig(**CONFIG), env, params)
    with pytest.raises(ValueError, match="positive integer"):
        Runner(agent, [0], progress=False, data_parallel=0)
    with pytest.raises(ValueError, match="does not divide the 1 (local )?device"):
        Runner(agent, [0], progress=False, data_parallel=2)
