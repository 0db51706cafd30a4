"""scripts/bench/bench_device.py: the page, the refusals, and ``--quick`` on the CPU into a tmp dir
(docs/ untouched)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "bench_device.py"
_spec = importlib.util.spec_from_file_location("bench_device", SCRIPT)
B = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_device", B)  # dataclasses look their module up there
_spec.loader.exec_module(B)


def _docs_digest() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((ROOT / "docs").rglob("*"))
        if p.is_file()
    }


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True
    )


def _row(**kw):
    base = {"compile_s": 1.5, "program_bytes": 3 * 2**20, "peak_bytes": 5 * 2**20}
    return {**base, **kw}


def _results(backend: str = "gpu") -> dict:
    return {
        "command": "python scripts/bench/bench_device.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "versions": {"jax": "0.10.2", "jaxlib": "0.10.2", "accelrl": "0.1.0"},
        "machine": {"python": "3.11.7", "system": "Linux", "machine": "x86_64", "cpu_count": 16},
        "device": {
            "backend": backend,
            "device_kind": "NVIDIA H100 80GB HBM3",
            "local_devices": 1,
            "compilation_cache": None,
        },
        "plan": {
            "batches": [1024, 2048],
            "env_steps": 100,
            "train_updates": 10,
            "members": [1, 4],
            "repeats": 5,
        },
        "envs": [
            _row(env="CartPole-v1", batch=1024, steps_per_s=1.234e8),
            _row(env="CartPole-v1", batch=2048, steps_per_s=2.5e8),
            _row(env="ThreeBody-v0", batch=1024, steps_per_s=4.0e6),
        ],
        "training": [
            _row(
                env="CartPole-v1",
                agent="ppo",
                members=1,
                num_envs=8,
                steps_per_update=256,
                steps_per_s=5.0e5,
                updates_per_s=1953.0,
            )
        ],
        "members": [
            _row(env="CartPole-v1", agent="ppo", members=1, steps_per_s=5.0e5),
            _row(env="CartPole-v1", agent="ppo", members=4, steps_per_s=1.5e6),
        ],
        "wall_s": 301.0,
        "cpu_s": 290.0,
    }


def test_page_without_results_says_plainly_it_was_not_run_on_a_gpu():
    page = B.render_page(None)
    assert "**Not run on a GPU yet.**" in page
    assert "python scripts/bench/bench_device.py\n" in page  # the exact command
    assert "pip download" in page and "--no-index --find-links wheels" in page


def test_page_holds_the_figures_device_and_versions():
    page = B.render_page(_results())
    assert "Not run on a GPU" not in page
    assert "NVIDIA H100 80GB HBM3" in page and "jax 0.10.2, jaxlib 0.10.2" in page
    assert "| CartPole-v1 | 123,000,000 | 250,000,000 | 1.50 |" in page
    assert "| ThreeBody-v0 | 4,000,000 | - | 1.50 |" in page  # a batch not measured: '-'
    assert "| ppo | CartPole-v1 | 8 | 256 | 500,000 | 1,950 | 1.50 | 3.0 | 5.0 |" in page
    # 4 members: 1.5e6 steps/s in all, 375,000 each, 3x one member's total
    assert "| 4 | 1,500,000 | 375,000 | 3.00x | 1.50 | 3.0 | 5.0 |" in page
    assert "commit `0123456789`" in page


def test_page_of_a_cpu_run_says_it_is_not_from_a_gpu():
    page = B.render_page(_results("cpu"))
    assert "**Not run on a GPU**: these figures are from the `cpu` backend." in page


def test_page_only_rebuilds_the_page_from_the_json(tmp_path):
    from accelrl.results import write_results

    write_results(tmp_path / "gpu.json", _results())
    r = _run("--page-only", "--out", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "gpu.md").read_text() == B.render_page(_results())


def test_from_results_renders_the_page_from_the_json_alone(tmp_path):
    rec = {**_results(), "generator": "scripts/bench/bench_device.py", "page": "docs/gpu.md"}
    (tmp_path / "gpu.json").write_text(json.dumps(rec))
    page = tmp_path / "gpu.md"
    r = _run("--from_results", str(tmp_path / "gpu.json"), "--page", str(page), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert page.read_text() == B.render_page(rec)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quick", "--out", str(ROOT / "docs" / "quick")], "never write into"),
        (["--parts", "envs", "--ids", "CartPole-v1"], "backend here is the CPU"),
        (["--quick", "--ids", "NoSuchEnv-v0", "--out", "OUT"], "unknown environment ids"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    before = _docs_digest()
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as e:
        B.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert _docs_digest() == before and not (tmp_path / "out").exists()


def test_quick_environment_part_writes_results_and_page(tmp_path):
    before = _docs_digest()
    out = tmp_path / "out"
    r = _run("--quick", "--out", str(out), "--ids", "CartPole-v1", "--parts", "envs", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "gpu.json").read_text())
    assert results["quick"] and results["device"]["backend"] == "cpu"
    assert results["command"].endswith(
        "--quick --out " + str(out) + " --ids CartPole-v1 --parts envs"
    )
    (row,) = results["envs"]
    assert row["env"] == "CartPole-v1" and row["batch"] == B.QUICK.batches[0]
    assert row["steps_per_s"] == pytest.approx(row["batch"] * row["steps"] / row["median_s"])
    assert row["compile_s"] > 0 and row["program_bytes"] > 0
    assert results["training"] == [] and results["members"] == []
    page = (out / "gpu.md").read_text()
    assert "| CartPole-v1 |" in page and "Not measured in this run." in page
    assert _docs_digest() == before


@pytest.mark.slow
def test_quick_runs_every_part_on_the_cpu(tmp_path):
    before = _docs_digest()
    r = _run("--quick", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "out" / "gpu.json").read_text())
    from accelrl._catalog import ACCELRL_ENV_IDS  # (other tests register toy ids in-process)

    ids = {r["env"] for r in results["envs"]}
    assert ids == {*ACCELRL_ENV_IDS, "CartPole-v1"}
    assert [(r["env"], r["agent"]) for r in results["training"]] == list(B.TRAINING)
    assert [r["members"] for r in results["members"]] == list(B.QUICK.members)
    for row in results["training"] + results["members"]:
        assert row["steps_per_s"] > 0 and row["compile_s"] > 0
    # Under 3 minutes on 2 cores: checked on process CPU seconds (all threads), which a shared
    # machine does not inflate as it does wall time.
    assert results["cpu_s"] < 180, (results["cpu_s"], results["wall_s"])
    assert _docs_digest() == before
