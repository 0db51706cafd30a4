"""Ray across machines, on this one: a two-node ``ray.cluster_utils.Cluster`` runs a small
``--backend ray`` study (ASHA, CartPole PPO) on both nodes; a watcher SIGKILLs the worker
process of a trial running on the second node after its first checkpoint, Ray restarts the
trial from that checkpoint, and the study ends with every trial recorded once, run to its whole
budget."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from accelrl.agents.spec import RunSpec
from accelrl.autotune.ray_tune import ray_search
from accelrl.autotune.spaces import Float, SearchSpace
from accelrl.autotune.study import read_rows

BUDGET = 8 * 32 * 16  # CartPole's default 8 envs x 32 steps: 16 updates per seed
SEGMENTS = 8  # reports of 512 env steps; a checkpoint every 2 reports
TRIALS = 3  # 2 run at once (one CPU per node), the third waits for a free node


def _raylet_pid(node) -> int:
    from ray._private import ray_constants

    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def _results(folder: Path) -> dict[Path, list[dict]]:
    """Each trial folder's ``result.json`` lines under Ray's experiment folder."""
    out = {}
    for path in folder.rglob("result.json"):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                break
        out[path.parent] = lines
    return out


class Killer(threading.Thread):
    """Watches the trials' results; SIGKILLs the worker of the first trial on ``raylet`` (the
    second node) that has a checkpoint and has not finished. Records which node ran what."""

    def __init__(self, folder: Path, raylets: dict[int, str], target: int):
        super().__init__(daemon=True)
        self.folder, self.raylets, self.target = folder, raylets, target
        self.killed: tuple[str, int, int] | None = None  # (trial dir, pid, env_steps)
        self.nodes_seen: set[str] = set()
        self.stop = threading.Event()

    def run(self):
        import psutil

        while not self.stop.is_set():
            for trial_dir, lines in _results(self.folder).items():
                if not lines:
                    continue
                last = lines[-1]
                try:
                    parent = psutil.Process(last["pid"]).ppid()
                except psutil.Error:
                    continue
                if parent in self.raylets:
                    self.nodes_seen.add(self.raylets[parent])
                ready = last["env_steps"] >= 1024 and not last["finished"]  # after a checkpoint
                if self.killed is None and parent == self.target and ready:
                    os.kill(last["pid"], signal.SIGKILL)
                    self.killed = (trial_dir.name, last["pid"], last["env_steps"])
            time.sleep(0.2)


@pytest.mark.slow
def test_two_node_study_survives_a_killed_worker(tmp_path):
    """Budget: a few minutes on the loaded 2-core machine (two Ray nodes, each worker compiling
    the PPO program once, 3 trials x 2 seeds x 4096 steps, one restart)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("psutil")
    from ray.cluster_utils import Cluster

    cache = tmp_path / "xdg_cache"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    try:
        ray.init(
            address=cluster.address,
            log_to_driver=False,
            runtime_env={
                "env_vars": {"XDG_CACHE_HOME": str(cache), "ACCELRL_NO_COMPILE_CACHE": "0"}
            },
        )
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        raylets = {_raylet_pid(cluster.head_node): "head", _raylet_pid(second): "second"}
        killer = Killer(tmp_path / "out" / "ray", raylets, _raylet_pid(second))
        killer.start()
        space = SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True)})
        try:
            rows = ray_search(
                RunSpec("CartPole-v1", "ppo", config={"total_timesteps": BUDGET}), space,
                scheduler="asha", trials=TRIALS, out=tmp_path / "out", tuning_seeds=(0, 1), segments=SEGMENTS,
                grace_period=BUDGET, max_failures=2,
            )  # fmt: skip
        finally:
            killer.stop.set()
            killer.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    # the kill happened mid-trial, on the second node, and both nodes ran trials
    assert killer.killed is not None, "no trial on the second node reached a checkpoint"
    assert killer.nodes_seen == {"head", "second"}
    # the killed trial was restarted in a new worker from its checkpoint, not from scratch:
    # the new worker's first report follows a checkpointed step (from scratch it would be 512)
    trial_dir, killed_pid, killed_at = killer.killed
    assert BUDGET > killed_at >= 1024
    reports = _results(tmp_path / "out" / "ray")[_find(tmp_path, trial_dir)]
    seen = [(r["pid"], r["env_steps"]) for r in reports]
    before = [r["env_steps"] for r in reports if r["pid"] == killed_pid]
    after = [r["env_steps"] for r in reports[len(before) :]]
    assert before and after and all(r["pid"] != killed_pid for r in reports[len(before) :]), seen
    assert 1024 < after[0] <= before[-1] + BUDGET // SEGMENTS and after[-1] == BUDGET, seen
    # every trial once, each run to its whole budget with a score
    assert [r["trial_id"] for r in rows] == list(range(TRIALS))
    assert read_rows(tmp_path / "out" / "trials.jsonl") == {r["trial_id"]: r for r in rows}
    lines = (tmp_path / "out" / "trials.jsonl").read_text().splitlines()
    assert len(lines) == TRIALS
    for r in rows:
        assert r["status"] == "ok" and r["env_steps"] == BUDGET, r


def _find(tmp_path: Path, name: str) -> Path:
    (path,) = [p for p in (tmp_path / "out" / "ray").rglob(name) if p.is_dir()]
    return path
