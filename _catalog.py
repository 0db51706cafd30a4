"""The built-in names, in a module that imports nothing heavy.

Importing JAX, flax and the environments takes seconds; a misspelt ``--env`` or ``--agent``
should fail at once, and listing ids should not import gymnax's environment zoo. This module is
the one source of the built-in environment ids (accelrl's, with the module that registers each,
and gymnax's) and agent names: ``accelrl.envs`` builds its registry from it, and
``tests/test_catalog.py`` checks it against gymnax and the agent registry. Names registered at
run time (a plugin, a test) are looked up in the live registries once those are imported
(``accelrl.scripts._names``).
"""

from __future__ import annotations

BUILTIN_ENVS: dict[str, tuple[str, bool]] = {
    "ThreeBody-v0": ("accelrl.envs.three_body", False),
    "ThreeBodyContinuous-v0": ("accelrl.envs.three_body", False),
    "MallocGame-v0": ("accelrl.envs.malloc", False),
    "Relax-v0": ("accelrl.envs.relax", False),
    "RelaxContinuous-v0": ("accelrl.envs.relax", False),
    **{
        env_id: ("accelrl.envs.mpe", True)
        for env_id in (
            "MPE_simple_v3",
            "MPE_simple_spread_v3",
            "MPE_simple_push_v3",
            "MPE_simple_crypto_v3",
            "MPE_simple_speaker_listener_v4",
            "MPE_simple_tag_v3",
            "MPE_simple_world_comm_v3",
            "MPE_simple_reference_v3",
            "MPE_simple_adversary_v3",
        )
    },
}
"""accelrl's own ids -> (the module that registers the id when imported, multi-agent).
``accelrl.envs`` provides them from this table and imports a module on the first ``make`` of
one of its ids (adding an environment means adding its line here)."""

ACCELRL_ENV_IDS: tuple[str, ...] = tuple(BUILTIN_ENVS)
"""accelrl's own environment ids."""

GYMNAX_ENV_IDS: tuple[str, ...] = (
    "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar", "Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite",
    "UmbrellaChain-bsuite", "DiscountingChain-bsuite", "MNISTBandit-bsuite", "SimpleBandit-bsuite",
    "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc", "BernoulliBandit-misc",
    "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc", "FrozenLake-misc",
)  # fmt: skip
"""gymnax's ids (``gymnax.registered_envs`` of the supported gymnax versions)."""

AGENT_NAMES: tuple[str, ...] = ("ppo", "sac", "dqn", "ippo", "mappo")
"""Built-in agent names."""

_RUN = ("num_envs", "total_timesteps", "normalize_obs", "obs_clip", "eval_episodes")
AGENT_FIELDS: dict[str, tuple[str, ...]] = {
    "ppo": (
        *_RUN, "num_steps", "num_minibatches", "update_epochs", "hidden_sizes", "activation",
        "shared_torso", "log_std_init", "normalize_advantages", "clip_value_loss", "anneal_lr",
        "adam_eps", "network", "set_embed_dim", "set_heads",
        "learning_rate", "gamma", "gae_lambda", "clip_eps", "value_clip_eps", "ent_coef",
        "vf_coef", "max_grad_norm", "reward_scale",
    ),
    "sac": (
        *_RUN, "rollout_steps", "gradient_steps", "batch_size", "buffer_size", "learning_starts",
        "actor_hidden_sizes", "critic_hidden_sizes", "activation", "autotune_alpha",
        "log_std_min", "log_std_max",
        "actor_lr", "critic_lr", "alpha_lr", "gamma", "tau", "alpha", "target_entropy_scale",
    ),
    "dqn": (
        *_RUN, "rollout_steps", "gradient_steps", "batch_size", "buffer_size", "learning_starts",
        "hidden_sizes", "activation", "double_dqn", "target_update_interval", "loss",
        "learning_rate", "gamma", "tau", "epsilon_start", "epsilon_end", "exploration_fraction",
        "weight_decay", "huber_delta", "max_grad_norm", "reward_scale",
    ),
}  # fmt: skip
"""Config and hparams field names of the built-in agents (the command-line options beyond the
run options), so a misspelt option fails before JAX is imported."""

# IPPO/MAPPO: PPO's config fields, their own, then PPO's hparams.
_PPO_CONFIG = AGENT_FIELDS["ppo"][: AGENT_FIELDS["ppo"].index("learning_rate")]
AGENT_FIELDS["ippo"] = AGENT_FIELDS["mappo"] = (
    *_PPO_CONFIG, "recurrent", "gru_size", "agent_id",
    *AGENT_FIELDS["ppo"][len(_PPO_CONFIG):],
)  # fmt: skip

TEACHER_NAMES: tuple[str, ...] = ("alp_gmm", "covar_gmm", "riac", "random")
"""Built-in task teachers (``accelrl.curricula.TEACHERS``; ``accelrl-teach --teacher``)."""

TASK_SPACE_NAMES: tuple[str, ...] = ("pendulum_dynamics", "three_body_ic")
"""Built-in task spaces (``accelrl.curricula.registered_task_spaces()``)."""
