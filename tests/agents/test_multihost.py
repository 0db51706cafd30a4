"""A run over two processes (``jax.distributed``, JAX's gloo CPU collectives, one CPU device
each) equals the same run in one process with two fake devices: the members are sharded over
the two devices either way, and every process gathers the metrics of all. A two-process run
into a run folder, killed after its second checkpoint and resumed by two new processes, ends
with the same metrics too."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

CHILD = textwrap.dedent(
    """
    import os, sys
    import jax

    mode, out, phase = sys.argv[1], sys.argv[2], sys.argv[5]
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

    class Killed(Exception):
        pass

    seen = []

    def kill(runner, state, seg):  # a process dying in the third segment, after 2 checkpoints
        seen.append(1)
        if phase == "kill" and len(seen) == 3:
            raise Killed

    folder = None if phase == "plain" else os.path.join(os.path.dirname(out), "run")
    runner = Runner(agent, [0, 1], progress=False, segments=4, checkpoint_every=1,
                    out_dir=folder, on_segment=kill)
    if phase == "kill":
        try:
            runner.train()
        except Killed:
            sys.exit(0)
        sys.exit("the run was not killed")
    res = runner.train(runner.restore()[0] if phase == "resume" else None)
    kernel = res.state.params["params"]["actor"]["Dense_0"]["kernel"]
    facts = [jax.process_count(), jax.device_count(), len(kernel.sharding.device_set),
             len(kernel.addressable_shards)]
    np.savez(f"{out}_{jax.process_index()}.npz", facts=np.array(facts), **res.metrics)
    """
)


def _distributed(out, phase: str) -> None:
    """CHILD as 2 processes under jax.distributed on this machine (one CPU device each)."""
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, "distributed", str(out), port, str(i), phase],
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_with_two_devices(tmp_path):
    """Budget: a few minutes on the loaded 2-core machine (seven processes compile a tiny
    PPO)."""
    one = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    ref = subprocess.run(
        [sys.executable, "-c", CHILD, "fake", str(tmp_path / "fake"), "", "", "plain"],
        env=one, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-3000:]
    _distributed(tmp_path / "dist_plain", "plain")
    # killed in its third segment: the checkpoints of updates 1 and 2 are there, complete
    _distributed(tmp_path / "dist_kill", "kill")
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "step_000001", "step_000001.json", "step_000002", "step_000002.json"
    ]  # fmt: skip
    assert (tmp_path / "run" / "seed_0" / "metrics.csv").exists()
    _distributed(tmp_path / "dist_resume", "resume")  # two new processes, from update 2
    fake = dict(np.load(tmp_path / "fake_0.npz"))
    # one process, 2 devices, both shards local; two processes, 2 devices, one shard each
    assert fake.pop("facts").tolist() == [1, 2, 2, 2]
    for phase, i in itertools.product(("plain", "resume"), range(2)):
        dist = dict(np.load(tmp_path / f"dist_{phase}_{i}.npz"))
        assert dist.pop("facts").tolist() == [2, 2, 2, 1]
        assert set(dist) == set(fake) and fake["loss"].shape == (2, 4)
        for name in fake:
            np.testing.assert_allclose(dist[name], fake[name], rtol=1e-6, err_msg=name)
