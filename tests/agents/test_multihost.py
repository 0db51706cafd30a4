"""A run over two processes (``jax.distributed``, JAX's gloo CPU collectives, one CPU device
each) equals the same run in one process with two fake devices: the members are sharded over
the two devices either way, and every process gathers the metrics of all."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

CHILD = textwrap.dedent(
    """
    import sys
    import jax

    mode, out = sys.argv[1], sys.argv[2]
    if mode == "distributed":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"localhost:{sys.argv[3]}",
            num_processes=2,
            process_id=int(sys.argv[4]),
        )
    import numpy as np
    from accelrl.agents.ppo import PPOConfig, make_ppo
    from accelrl.agents.runner import Runner
    from accelrl.envs import make

    env, params = make("CartPole-v1")
    config = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2,
                       total_timesteps=128)
    agent = make_ppo(config, env, params)
    runner = Runner(agent, [0, 1], progress=False, segments=2)
    res = runner.train()
    kernel = res.state.params["params"]["actor"]["Dense_0"]["kernel"]
    facts = [jax.process_count(), jax.device_count(), len(kernel.sharding.device_set),
             len(kernel.addressable_shards)]
    np.savez(f"{out}_{jax.process_index()}.npz", facts=np.array(facts), **res.metrics)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_with_two_devices(tmp_path):
    """Budget: ~1-3 min on the loaded 2-core machine (three processes compile a tiny PPO)."""
    one = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    ref = subprocess.run(
        [sys.executable, "-c", CHILD, "fake", str(tmp_path / "fake")],
        env=one, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-3000:]
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, "distributed", str(tmp_path / "dist"), port, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    fake = dict(np.load(tmp_path / "fake_0.npz"))
    # one process, 2 devices, both shards local; two processes, 2 devices, one shard each
    assert fake.pop("facts").tolist() == [1, 2, 2, 2]
    for i in range(2):
        dist = dict(np.load(tmp_path / f"dist_{i}.npz"))
        assert dist.pop("facts").tolist() == [2, 2, 2, 1]
        assert set(dist) == set(fake) and fake["loss"].shape == (2, 4)
        for name in fake:
            np.testing.assert_allclose(dist[name], fake[name], rtol=1e-6, err_msg=name)
