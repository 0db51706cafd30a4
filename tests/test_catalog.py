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

    for name in C.AGENT_NAMES:
        spec = agent_spec(name)
        assert (C.AGENT_CLASSES[name][1:]) == (spec.config_cls.__name__, spec.hparams_cls.__name__)
        real = [
            f.name for cls in (spec.config_cls, spec.hparams_cls) for f in dataclasses.fields(cls)
        ]
        assert list(C.agent_fields(name)) == real, name
    assert C.agent_fields("custom_agent") is None


def test_class_fields_follow_dataclass_order(tmp_path, monkeypatch):
    """Bases' fields first, a redeclared field in its base's place, ClassVars and methods left
    out, bases found through ``from accelrl.agents.<m> import``: checked against the real
    dataclass of a made-up pair of modules (a wrong order or a missed base fails)."""
    import dataclasses
    import importlib.util
    import sys
    import textwrap

    (tmp_path / "agents").mkdir()
    base = """
        import dataclasses
        from typing import ClassVar

        @dataclasses.dataclass(frozen=True)
        class Base:
            a: int = 1
            b: int = 2
            kind: ClassVar[str] = "x"

            @property
            def c(self) -> int:
                return 3
        """
    child = """
        import dataclasses
        from accelrl.agents.base_mod import Base

        @dataclasses.dataclass(frozen=True)
        class Child(Base):
            z: int = 0
            a: int = 5
            y: tuple[int, ...] = (1,)
        """
    (tmp_path / "agents" / "base_mod.py").write_text(textwrap.dedent(base))
    (tmp_path / "agents" / "child_mod.py").write_text(textwrap.dedent(child))
    monkeypatch.setattr(C, "__file__", str(tmp_path / "_catalog.py"))
    C._parse_agent_module.cache_clear()
    try:
        derived = C._class_fields("child_mod", "Child")
    finally:
        C._parse_agent_module.cache_clear()
    spec = importlib.util.spec_from_file_location("base_mod", tmp_path / "agents" / "base_mod.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setitem(sys.modules, "accelrl.agents.base_mod", mod)
    ns: dict = {}
    exec(textwrap.dedent(child), ns)
    assert derived == tuple(f.name for f in dataclasses.fields(ns["Child"])) == ("a", "b", "z", "y")


def test_misspelt_options_fail_with_close_names():
    run = ("env", "agent", "out", "seeds")
    assert (
        N.check_options("ppo", ["--env", "X", "--gamma", "0.9", "--no-normalize_obs"], run) is None
    )
    assert "Did you mean: --learning_rate" in N.check_options("ppo", ["--lerning-rate=1"], run)
    assert N.check_options("custom_agent", ["--anything"], run) is None  # fields known only later
