"""scripts/_bench.py: the timing helper and the peer virtual environment (nothing installed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import _bench
import jax
import jax.numpy as jnp
import pytest
from _bench import PeerVenv, Timing, median, median_ratio, ratio, time_fn

SCRIPTS = Path(_bench.__file__).resolve().parent


def test_time_fn_times_a_known_sleep():
    calls = []

    def nap(seconds):
        calls.append(seconds)
        time.sleep(seconds)
        return "done"

    timing = time_fn(nap, 0.02, warmup=1, repeats=3)
    assert len(calls) == 4 and len(timing.warmup_times) == 1 and len(timing.times) == 3
    assert timing.result == "done"
    assert all(t >= 0.02 for t in timing.times + timing.warmup_times)
    assert 0.02 <= timing.median < 0.5  # generous: the machine may be shared
    assert timing.cpu_median < timing.median  # sleeping costs (almost) no CPU
    assert timing.total == pytest.approx(sum(timing.times))
    assert timing.first_s == timing.warmup_times[0]
    assert timing.rates(1.0) == pytest.approx([1.0 / t for t in timing.times])


def test_time_fn_without_warmup():
    timing = time_fn(lambda: 1, warmup=0, repeats=2)
    assert timing.warmup_times == () and timing.first_s == timing.times[0]


class _Blockable:
    """A pytree leaf that records being blocked on, as a JAX array would be."""

    def __init__(self):
        self.blocked = 0

    def block_until_ready(self):
        self.blocked += 1
        return self


def test_time_fn_blocks_on_every_call():
    leaf = _Blockable()
    timing = time_fn(lambda: {"x": leaf, "n": 3}, warmup=2, repeats=3)
    assert leaf.blocked == 5 and timing.result["n"] == 3


def test_time_fn_waits_for_jax_results():
    f = jax.jit(lambda x: (x @ x.T).sum())
    x = jnp.ones((256, 256))
    timing = time_fn(f, x, warmup=1, repeats=2)
    assert timing.result.is_ready()
    assert float(timing.result) == 256.0**3


@pytest.mark.parametrize(
    "kwargs", [{"repeats": 0}, {"repeats": -1}, {"repeats": 1.5}, {"repeats": True}, {"warmup": -1}]
)
def test_time_fn_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError):
        time_fn(lambda: None, **kwargs)


def test_medians_and_ratios():
    assert median([3.0, 1.0, 2.0]) == 2.0 and math.isnan(median([]))
    assert median([1.0, math.inf, math.inf]) == math.inf  # unreached seeds count as infinitely slow
    assert ratio(6.0, 3.0) == 2.0
    for a, b in [(1.0, 0.0), (math.inf, 1.0), (1.0, math.nan), (None, 1.0)]:
        assert math.isnan(ratio(a, b))
    assert median_ratio([1.0, 4.0, 9.0], [2.0]) == 2.0
    assert math.isnan(median_ratio([], [1.0]))


def test_timing_properties():
    timing = Timing(times=(1.0, 3.0), cpu_times=(0.5, 0.5))
    assert timing.median == 2.0 and timing.cpu_total == 1.0 and timing.first_s == 1.0


# ---------------------------------------------------------------------------------------------
# PeerVenv


def _fake_venv(tmp_path: Path, requirements=(("pkg==1.0",),), probe=None) -> PeerVenv:
    """A PeerVenv whose interpreter is a link to this one (runs stdlib code, installs nothing)."""
    peer = PeerVenv(tmp_path / "peer", requirements, probe=probe)
    peer.python.parent.mkdir(parents=True)
    peer.python.symlink_to(sys.executable)
    return peer


def test_setup_commands(tmp_path):
    peer = PeerVenv(tmp_path / "sb3", [["torch==2.13.0"], "stable-baselines3"])
    assert peer.requirements == (("torch==2.13.0",), ("stable-baselines3",))
    py = str(tmp_path / "sb3" / "bin" / "python")
    assert peer.setup_commands() == [
        [sys.executable, "-m", "venv", "--clear", str(tmp_path / "sb3")],
        [py, "-m", "pip", "install", "-q", "torch==2.13.0"],
        [py, "-m", "pip", "install", "-q", "stable-baselines3"],
    ]
    with pytest.raises(ValueError):
        PeerVenv(tmp_path / "x", [])
    with pytest.raises(ValueError):
        PeerVenv(tmp_path / "x", [[]])


def test_command_and_env(tmp_path, monkeypatch):
    peer = PeerVenv(tmp_path / "rejax", [["rejax==0.1.3"]])
    py = str(peer.python)
    assert peer.command("--seed", 3, script="w.py") == [py, "w.py", "--seed", "3"]
    cmd = peer.command("a", code="print(1)", unbuffered=True)
    assert cmd[:3] == [py, "-u", "-c"] and cmd[3].endswith("print(1)") and cmd[4:] == ["a"]
    with pytest.raises(ValueError):
        peer.command(script="w.py", code="print(1)")
    with pytest.raises(ValueError):
        peer.command()
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = peer.env({"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert "PYTHONPATH" not in env and env["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert env["PATH"] == os.environ["PATH"]


def test_code_runs_with_the_helpers_importable(tmp_path):
    peer = _fake_venv(tmp_path)
    code = "import _bench, json; print(json.dumps(_bench.median([1, 5, 2])))"
    proc = peer.run("x", code=code, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == 2
    with peer.popen(code="import sys; print(sys.argv[1:])", stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout.read().strip() == "[]"


def test_readiness_marker_and_probe(tmp_path):
    assert not PeerVenv(tmp_path / "missing", ["pkg"]).is_ready()
    peer = _fake_venv(tmp_path)
    assert not peer.is_ready()  # an interpreter but no marker and no probe
    peer.marker.write_text(json.dumps([["pkg==1.0"]]))
    assert peer.is_ready()
    changed = PeerVenv(peer.path, [["pkg==2.0"]])
    assert not changed.is_ready()  # other requirements: made again
    peer.marker.unlink()
    assert not PeerVenv(peer.path, [["pkg==1.0"]], probe="no_such_module_here").is_ready()
    probed = PeerVenv(peer.path, [["pkg==1.0"]], probe="json")
    assert probed.is_ready() and peer.marker.exists()  # an older env that imports: marked


def test_ensure_runs_the_setup_commands_once(tmp_path, monkeypatch):
    peer = PeerVenv(tmp_path / "jaxmarl", [["jaxmarl==0.2.0"]])
    ran = []

    def fake_run(cmd, check=False, **kwargs):
        ran.append(cmd)
        if "venv" in cmd:  # what `python -m venv` would leave behind
            peer.python.parent.mkdir(parents=True)
            peer.python.symlink_to(sys.executable)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(_bench.subprocess, "run", fake_run)
    assert peer.ensure() == peer.python
    assert ran == peer.setup_commands() and peer.is_ready()
    ran.clear()
    assert peer.ensure() == peer.python and ran == []


def test_bench_agents_imports_helpers_without_accelrl(tmp_path):
    """The worker side of bench_agents runs in a peer env without accelrl: by path, _bench
    beside it is found. A bare interpreter (no .venv site-packages) stands in for that env."""
    peer = _fake_venv(tmp_path)
    probe = peer.run(code="import accelrl", capture_output=True)
    if probe.returncode == 0:
        pytest.skip("accelrl is importable without the venv here")
    proc = peer.run(
        "--help", script=SCRIPTS / "bench_agents.py", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--throughput-only" in proc.stdout


def test_render_from_results_needs_a_raw_results_file_with_page_keys(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- a: begin -->\n<!-- a: end -->\n")
    record = {"command": "c", "commit": "abc", "clean_tree": True, "value": 7}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="lacks generator, page"):
        _bench.render_from_results(path, lambda r: {"a": str(r["value"])})
    path.write_text(json.dumps({**record, "generator": "g.py", "page": "p.md"}))
    with pytest.raises(SystemExit, match="not a file"):
        _bench.render_from_results(path, lambda r: {"a": str(r["value"])}, page=page)
    path.write_text(
        json.dumps({**record, "generator": "scripts/bench/_bench.py", "page": "README.md"})
    )
    _bench.render_from_results(path, lambda r: {"a": str(r["value"])}, page=page)
    assert page.read_text() == "<!-- a: begin -->\n7\n<!-- a: end -->\n"
    with pytest.raises(SystemExit, match="exactly one"):
        _bench.render_from_results(path, lambda r: {"b": "x"}, page=page)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SystemExit, match="not valid JSON"):
        _bench.render_from_results(tmp_path / "bad.json", dict, page=page)


def test_bench_envs_block_from_a_record(tmp_path):
    import bench_envs

    rows = [{"env": "B-v0", "batch": 1, "steps_per_s": 49_000.0},
            {"env": "B-v0", "batch": 64, "steps_per_s": 1_110_000.0},
            {"env": "A-v0", "batch": 1, "steps_per_s": 105_000.0}]  # fmt: skip
    record = {
        "command": "python scripts/bench/bench_envs.py", "commit": "0123456789abcdef",
        "clean_tree": True, "generator": bench_envs.GENERATOR, "page": bench_envs.PAGE,
        "settings": {"steps": 50, "repeats": 3},
        "host": {"cpus": 2, "load_start": [1.0], "load_end": [2.0]}, "rows": rows,
    }  # fmt: skip
    (text,) = bench_envs.render(record).values()
    assert "| `A-v0` | 105k | - |" in text and "| `B-v0` | 49k | 1.11M |" in text
    assert "| env | batch 1 | 64 |" in text and "clean tree" in text
    page = tmp_path / "README.md"
    page.write_text("<!-- bench_envs: begin -->\nold\n<!-- bench_envs: end -->\n")
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(record))
    bench_envs.render_from_results(path, bench_envs.render, page=page)
    assert text in page.read_text()
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        bench_envs.main(["--quick", "--out", str(REPO / "docs" / "results" / "envs.json")])


def test_bench_envs_skips_larger_batches_once_a_call_would_be_too_long(tmp_path, monkeypatch):
    import bench_envs

    def fake(env_id, batch, steps, repeats):  # Slow-v0's call grows 1 s per env; Fast-v0 1 ms
        per_env = 1.0 if env_id == "Slow-v0" else 1e-3
        return {"env": env_id, "batch": batch, "steps_per_s": steps / per_env,
                "median_s": per_env * batch, "compile_s": 0.0}  # fmt: skip

    monkeypatch.setattr(bench_envs, "bench_one", fake)
    out = tmp_path / "envs.json"
    argv = ["--ids", "Slow-v0", "Fast-v0", "--batch-sizes", "64", "1", "8", "--out", str(out)]
    rows = bench_envs.main([*argv, "--max_call_s", "30"])
    assert [(r["env"], r["batch"]) for r in rows] == [
        ("Slow-v0", 1),
        ("Slow-v0", 8),
        ("Fast-v0", 1),
        ("Fast-v0", 8),
        ("Fast-v0", 64),
    ]
    record = json.loads(out.read_text())
    assert record["skipped"] == [{"env": "Slow-v0", "batch": 64, "projected_s": 64.0}]
    (text,) = bench_envs.render(record).values()
    assert "| `Slow-v0` | 0.2k | 0.2k | skipped |" in text
    assert "`Slow-v0` at 64 (about 64 s)" in text and "over 30 s (`--max_call_s`)" in text
    assert len(bench_envs.main([*argv, "--max_call_s", "0"])) == 6  # 0: never skip
    with pytest.raises(SystemExit):
        bench_envs.main([*argv, "--max_call_s", "-1"])
