"""PPO learns (slow): CartPole-v1 solved with the default config, 100k steps per seed."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from accelrl.agents.configs import default_config
from accelrl.agents.evaluation import evaluate_seeds
from accelrl.agents.ppo import make_ppo
from accelrl.agents.runner import Runner
from accelrl.envs import make


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps():
    """Budget: 100_000 environment steps per seed (390 updates of 8 x 32), 3 seeds, default
    CartPole config (rl-zoo hyperparameters); about 40 s of CPU time on this machine."""
    config, hp = default_config("ppo", "CartPole-v1")
    assert config.total_timesteps == 100_000
    env, params = make("CartPole-v1")
    agent = make_ppo(config, env, params)
    hparams = agent.default_hparams().replace(**{k: np.float32(v) for k, v in hp.items()})
    result = Runner(agent, [0, 1, 2], hparams, progress=False).train()
    summary = evaluate_seeds(agent, result.state, [0, 1, 2], 32)
    assert summary["mean_return"] >= 475, summary


@pytest.mark.slow
def test_seed_axis_shards_across_fake_devices():
    """With 2 (fake) local devices the runner shards the seed axis; results match 1 device."""
    code = textwrap.dedent(
        """
        import jax, numpy as np
        from accelrl.agents.ppo import PPOConfig, make_ppo
        from accelrl.agents.runner import Runner
        from accelrl.envs import make
        env, params = make("CartPole-v1")
        agent = make_ppo(PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=1,
                                   total_timesteps=64), env, params)
        r = Runner(agent, [0, 1], progress=False)
        res = r.train()
        print(jax.local_device_count(), r._mesh is not None,
              len(res.state.params["params"]["actor"]["Dense_0"]["kernel"].sharding.device_set))
        np.save("{out}", res.metrics["loss"])
        """
    )
    outs = []
    for n in (2, 1):
        path = f"/tmp/accelrl_shard_{os.getpid()}_{n}.npy"
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        p = subprocess.run(
            [sys.executable, "-c", code.replace("{out}", path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append((p.stdout.split(), np.load(path)))
    assert outs[0][0] == ["2", "True", "2"] and outs[1][0] == ["1", "False", "1"]
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-6)
