"""A synthetic backend for the tuners: 'training' accumulates a known quality of the hparams.

Each member's state is a number (its progress). Advancing a configuration by ``d`` steps adds
``quality(values) * d / budget`` (plus a small per-seed offset), so the score at the whole
budget is the quality of a constant configuration, a run stopped at a rung has the matching
fraction of it, and a PBT lineage that switches to better values mid-run gains faster from
then on. ``quality`` peaks at 1.0 at learning_rate 1e-3, gae_lambda 0.95 (and num_minibatches 4
when the space has it).
"""

import math

import numpy as np

from accelrl.agents.ppo import PPOConfig, PPOHparams
from accelrl.autotune.spaces import Categorical, Float, SearchSpace
from accelrl.autotune.study import GroupBackend, GroupOutcome

SPACE = SearchSpace(
    {
        "learning_rate": Float(1e-6, 0.1, log=True),
        "gae_lambda": Float(0.8, 0.9999),
        "num_minibatches": Categorical((1, 2, 4, 8)),
    }
)
HP_SPACE = SPACE.without("num_minibatches")


def quality(v):
    q = math.exp(-((math.log10(v["learning_rate"]) + 3) ** 2)) * math.exp(
        -100 * (v["gae_lambda"] - 0.95) ** 2
    )
    if "num_minibatches" in v:
        q *= 1.0 if v["num_minibatches"] == 4 else 0.8
    return q


class SyntheticRun:
    def __init__(self, backend, config_values, settings, seeds):
        self.backend, self.config_values = backend, dict(config_values)
        self.values = [dict(s) for s in settings]
        self.seeds = list(seeds)
        self.state = np.array([[0.01 * math.sin(7 * s) for s in self.seeds] for _ in settings])
        self.steps = 0
        self.exploited = []

    def advance(self, steps, window=None):
        steps = min(int(steps), self.backend.budget)
        assert steps >= self.steps, "a run never goes back"
        d = steps - self.steps
        for i, v in enumerate(self.values):
            self.state[i] += quality({**self.config_values, **v}) * d / self.backend.budget
        self.steps = steps
        self.backend.steps_trained += d * self.state.size
        return GroupOutcome(self.state.copy(), [None] * len(self.values), self.steps)

    def select(self, idx):
        self.state = self.state[list(idx)]
        self.values = [self.values[i] for i in idx]

    def exploit(self, dst, src):
        self.state[dst] = self.state[src]
        self.values[dst] = dict(self.values[src])
        self.exploited.append((dst, src))

    def set_values(self, i, values):
        self.values[i] = {**self.values[i], **values}

    def evaluate(self, episodes=None):
        return self.state.copy() + 0.001, [None] * len(self.values)


class SyntheticBackend(GroupBackend):
    def __init__(self, budget=1000):
        self.budget = budget
        self.base_config = PPOConfig(num_envs=8, num_steps=32)
        self.runs = []
        self.steps_trained = 0

    def open(self, config_values, settings, seeds):
        run = SyntheticRun(self, config_values, settings, seeds)
        self.runs.append(run)
        return run

    def defaults(self, names):
        c, h = self.base_config, PPOHparams()
        return {n: getattr(c, n) if hasattr(c, n) else float(getattr(h, n)) for n in names}

    def describe(self, values):
        return dict(values)
