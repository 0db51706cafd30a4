"""Workload extraction from XLA buffer-assignment dumps (one compile in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from accelrl.envs.malloc.workload import DEFAULT_FAST_BW, DEFAULT_SLOW_BW
from accelrl.envs.malloc.xla_dump import workload_from_dump

PROGRAM = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    def tiny_mlp(w1, w2, x):
        h = jnp.tanh(x @ w1)
        return jnp.sum((h @ w2) ** 2)
    s = jax.ShapeDtypeStruct
    jax.jit(jax.grad(tiny_mlp)).lower(
        s((64, 128), jnp.float32), s((128, 32), jnp.float32), s((16, 64), jnp.float32)
    ).compile()
    """
)


@pytest.fixture(scope="module")
def dump_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("xla_dump")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"--xla_dump_to={out} --xla_dump_hlo_as_text --xla_dump_buffer_assignment_analysis"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, timeout=120)
    return out


def test_dump_parses_into_a_real_workload(dump_dir):
    w = workload_from_dump(dump_dir, "jit_tiny_mlp.", peak_flops=None)
    sizes = set(w.size.tolist())
    # parameters and the [64, 128] gradient are buffers of their exact byte size
    assert {64 * 128 * 4, 128 * 32 * 4, 16 * 64 * 4} <= sizes
    assert (w.end >= w.start).all() and w.start.min() == 0
    # the three parameters are live from the first step
    params = [k for k, s in enumerate(w.size) if s in (128 * 32 * 4, 16 * 64 * 4)]
    assert all(w.start[k] == 0 for k in params)
    # uncapped benefit is exactly bytes moved times the bandwidth gap, and each buffer moves at
    # least its size (written once or read once)
    delta = 1 / DEFAULT_SLOW_BW - 1 / DEFAULT_FAST_BW
    np.testing.assert_allclose(w.benefit, w.bytes_moved * delta, rtol=1e-9)
    assert (w.bytes_moved >= w.size).all()
    assert w.peak_live_bytes >= 64 * 128 * 4 + 128 * 32 * 4 + 16 * 64 * 4


def test_compute_cap_and_bandwidths(dump_dir):
    fast = workload_from_dump(dump_dir, "jit_tiny_mlp.", peak_flops=None)
    capped = workload_from_dump(dump_dir, "jit_tiny_mlp.", peak_flops=1e9)  # compute bound
    assert (capped.benefit <= fast.benefit + 1e-18).all()
    assert capped.total_benefit < 0.5 * fast.total_benefit
    wider = workload_from_dump(dump_dir, "jit_tiny_mlp.", slow_bw=5e11, peak_flops=None)
    assert wider.total_benefit > fast.total_benefit
    np.testing.assert_array_equal(wider.bytes_moved, fast.bytes_moved)


def test_missing_module_is_a_clear_error(dump_dir):
    with pytest.raises(FileNotFoundError, match="0 files match"):
        workload_from_dump(dump_dir, "jit_no_such_program.")


@pytest.mark.slow
def test_make_workloads_script_end_to_end(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(
                Path(__file__).resolve().parents[2]
                / "scripts"
                / "experiments"
                / "make_workloads.py"
            ),
            "--models",
            "mlp",
            "vae",
            "--batches",
            "2",
            "--test-models",
            "vae",
            "--out",
            str(tmp_path),
        ],
        check=True,
        timeout=600,
    )
    from accelrl.envs.malloc.workload import load_dataset

    npz, js = tmp_path / "workloads.npz", tmp_path / "workloads.json"
    train = load_dataset("train", npz, js)
    test = load_dataset("test", npz, js)
    validation = load_dataset("validation", npz, js)
    # one batch size: the only training model's fwd program is its validation program
    assert [w.name for w in train] == ["mlp/train/b2"]
    assert [w.name for w in validation] == ["mlp/fwd/b2"]
    assert [w.name for w in test] == ["vae/fwd/b2", "vae/train/b2"]


@pytest.mark.slow  # budget: one large model compiled in its worker, about 20 s on 2 cores
def test_make_workloads_large_set_writes_its_own_files(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "experiments" / "make_workloads.py"
    cmd = [sys.executable, str(script), "--large", "--models", "resnet_large", "--batches", "4",
           "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=600)
    from accelrl.envs.malloc.workload import load_dataset

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "workloads_large.json", "workloads_large.npz"]  # fmt: skip
    (w,) = load_dataset(
        "large", tmp_path / "workloads_large.npz", tmp_path / "workloads_large.json"
    )
    assert w.name == "resnet_large/train/b4" and w.num_buffers == 1667  # the shipped program's
