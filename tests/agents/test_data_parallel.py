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

CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from accelrl.agents.ppo import PPOConfig, make_ppo
    from accelrl.agents.runner import Runner
    from accelrl.envs import make

    env, params = make("CartPole-v1")
    agent = make_ppo(PPOConfig(**json.loads(sys.argv[1])), env, params)
    runner = Runner(agent, [3], progress=False, segments=2, data_parallel=2)
    res = runner.train()
    obs, kernel = res.state.obs, res.state.params["params"]["actor"]["Dense_0"]["kernel"]
    hlo = runner._run.lower(res.state, res.hparams, runner.segment, 0).as_text()
    np.savez(sys.argv[2], **res.metrics)
    odd = make_ppo(PPOConfig(**{**json.loads(sys.argv[1]), "num_envs": 3}), env, params)
    try:
        Runner(odd, [3], progress=False, data_parallel=2)
        refused = ""
    except ValueError as e:
        refused = str(e)
    print(json.dumps({
        "devices": jax.local_device_count(),
        "mesh": dict(runner._mesh.shape),
        "obs_spec": [str(a) for a in obs.sharding.spec],
        "obs_shard": list(obs.addressable_shards[0].data.shape),
        "kernel_spec": [str(a) for a in kernel.sharding.spec],
        "kernel_devices": len(kernel.sharding.device_set),
        "programs": runner._run._cache_size(),
        "refused": refused,
    }))
    """
)


def test_one_member_over_two_devices_matches_one_device(tmp_path):
    out = tmp_path / "dp2.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(CONFIG), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    info = json.loads(p.stdout.strip().splitlines()[-1])
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


@pytest.mark.skipif(jax.local_device_count() != 1, reason="needs exactly one local device")
def test_data_parallel_must_be_positive_and_divide_the_devices():
    env, params = make("CartPole-v1")
    agent = make_ppo(PPOConfig(**CONFIG), env, params)
    with pytest.raises(ValueError, match="positive integer"):
        Runner(agent, [0], progress=False, data_parallel=0)
    with pytest.raises(ValueError, match="does not divide the 1 local device"):
        Runner(agent, [0], progress=False, data_parallel=2)
