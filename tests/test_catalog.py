"""The light name lists the CLI checks before importing JAX: agent names equal the registry's
(environment ids: tests/envs/test_registry.py checks BUILTIN_ENVS and the gymnax ids)."""

import accelrl._catalog as C
from accelrl.scripts import _names as N


def test_agent_names_match_the_registry():
    import subprocess
    import sys

    code = "import accelrl.agents as A; print(' '.join(A.registered_agents()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == sorted(C.AGENT_NAMES)


def test_checks_name_close_matches_and_accept_known_names():
    assert N.check_env_id("CartPole-v1") is None and N.check_agent("sac") is None
    assert "Did you mean: ThreeBody-v0" in N.check_env_id("ThreeBdy-v0")
    assert "unknown agent 'dqm'" in N.check_agent("dqm")


def test_agent_fields_match_the_config_and_hparams_classes():
    import dataclasses

    from accelrl.agents import agent_spec

    for name, fields in C.AGENT_FIELDS.items():
        spec = agent_spec(name)
        real = [
            f.name for cls in (spec.config_cls, spec.hparams_cls) for f in dataclasses.fields(cls)
        ]
        assert list(fields) == real, name


def test_misspelt_options_fail_with_close_names():
    run = ("env", "agent", "out", "seeds")
    assert (
        N.check_options("ppo", ["--env", "X", "--gamma", "0.9", "--no-normalize_obs"], run) is None
    )
    assert "Did you mean: --learning_rate" in N.check_options("ppo", ["--lerning-rate=1"], run)
    assert N.check_options("custom_agent", ["--anything"], run) is None  # fields known only later
