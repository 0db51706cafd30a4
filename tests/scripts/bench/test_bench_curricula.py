"""bench_curricula's command line: per-teacher keyword arguments reach the teachers' run specs."""

from __future__ import annotations

import json

import bench_curricula
import pytest

import accelrl.agents


def test_teacher_kwargs_reach_only_their_teacher(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(accelrl.agents, "train_run", lambda spec, out, **kw: calls.append(spec))
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=False, spaces=["three_body_ic"], teachers=["alp_gmm", "random"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 100}},
    )  # fmt: skip
    by_teacher = {spec.reset_strategy.name: spec.reset_strategy.settings for spec in calls}
    assert by_teacher["alp_gmm"] == {"task_space": "three_body_ic", "fit_rate": 100}
    assert by_teacher["random"] == {"task_space": "three_body_ic"}


def test_quick_teacher_settings_are_overridden_not_dropped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(accelrl.agents, "train_run", lambda spec, out, **kw: calls.append(spec))
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=True, spaces=["pendulum_dynamics"], teachers=["alp_gmm"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 30}},
    )  # fmt: skip
    (spec,) = calls
    kwargs = spec.reset_strategy.settings
    assert kwargs["fit_rate"] == 30 and kwargs["ks"] == [2, 3, 4]


@pytest.mark.parametrize("bad", ['{"nope": {"fit_rate": 1}}', '{"alp_gmm": 3}', "[1]"])
def test_bad_teacher_kwargs_are_refused(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(
            ["--out", str(tmp_path), "--parts", "teachers", "--teacher-kwargs", bad]
        )
    assert exc.value.code == 2
    assert "--teacher-kwargs" in capsys.readouterr().err


def test_overhead_seeds_below_one_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(
            ["--out", str(tmp_path), "--parts", "overhead", "--overhead-seeds", "0"]
        )
    assert exc.value.code == 2
    assert "--overhead-seeds" in capsys.readouterr().err


def test_ceiling_keys_below_one_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(["--out", str(tmp_path), "--parts", "ceiling", "--ceiling-keys", "0"])
    assert exc.value.code == 2
    assert "--ceiling-keys" in capsys.readouterr().err


def test_ceiling_skips_continuous_action_spaces(capsys):
    assert bench_curricula.run_ceiling(["pendulum_dynamics"], keys=1) == {}
    assert "skipped (continuous actions)" in capsys.readouterr().out


def _protocol_record(alp_final, rnd_final, space="pendulum_dynamics", **extra):
    seeds = list(range(1000, 1000 + len(alp_final)))

    def run(final):
        return {"seeds": seeds, "final": list(final), "auc": [0.5 * f for f in final],
                "wall_s": 10.0, "total_timesteps": 1_966_080}  # fmt: skip

    return {
        "command": "python scripts/bench/bench_curricula.py --protocol " + space,
        "commit": "0123456789abcdef0123",
        "clean_tree": True,
        "generator": "scripts/bench/bench_curricula.py",
        "page": "docs/curricula.md",
        "space": space,
        "split": "test",
        "seeds": seeds,
        "test_task_seed": 1,
        "test_tasks": 100,
        "budget_scale": 6.0,
        "teacher_kwargs": {},
        "teachers": {"alp_gmm": run(alp_final), "random": run(rnd_final)},
        **extra,
    }


def test_protocol_block_says_met_only_when_both_paired_intervals_clear_zero():
    base = [0.10, 0.30, 0.20, 0.40, 0.25, 0.15, 0.35, 0.05]
    met = bench_curricula.space_block(_protocol_record([b + 0.05 for b in base], base))
    assert "**met**" in met and "beats" in met and "training seeds 1000-1007" in met
    assert "Generated from `python scripts/bench/bench_curricula.py" in met
    # The claim is false: ALP-GMM below Random on every seed.
    worse = bench_curricula.space_block(_protocol_record([b - 0.05 for b in base], base))
    assert "**not met**" in worse and "final: worse" in worse
    # Noise around zero: no claim either.
    noisy = [b + d for b, d in zip(base, [0.05, -0.05] * 4, strict=True)]
    assert "**not met**" in bench_curricula.space_block(_protocol_record(noisy, base))


def test_protocol_comparison_refuses_unpaired_seeds():
    rec = _protocol_record([0.2, 0.3], [0.1, 0.2])
    rec["teachers"]["random"]["seeds"] = [0, 1]
    with pytest.raises(ValueError, match="seeds"):
        bench_curricula.compare(rec["teachers"])


def test_gmm_and_overhead_blocks_judge_their_targets():
    def gmm(speedup):
        part = lambda ms: {"median_s": ms / 1e3, "k": [9, 10]}  # noqa: E731
        return {"jax": part(10), "sklearn_1_thread": part(10 * speedup),
                "sklearn_default_threads": part(20 * speedup), "jax_first_call_s": 2.0,
                "speedup_vs_1_thread": speedup, "speedup_vs_default": 2 * speedup}  # fmt: skip

    def overhead(alp):
        case = lambda ms, o: {"s_per_update": ms / 1e3, "overhead": o}  # noqa: E731
        return {"config": {"seeds": 2, "rounds": 6, "per_round": 8, "warm_updates": 32},
                "plain": case(65, 0.0), "random": case(65, 0.01), "alp_gmm": case(70, alp),
                "riac": case(68, 0.04)}  # fmt: skip

    rec = _protocol_record([0.2, 0.3], [0.1, 0.2], gmm=gmm(12.0), overhead=overhead(0.04))
    blocks = bench_curricula.page_blocks(rec)
    assert set(blocks) == {"curricula_pendulum_dynamics", "curricula_gmm", "curricula_overhead"}
    assert "**met** (12.0x" in blocks["curricula_gmm"]
    assert "**met**" in blocks["curricula_overhead"]
    rec.update(gmm=gmm(6.0), overhead=overhead(0.09))
    blocks = bench_curricula.page_blocks(rec)
    assert "**not met** (6.0x" in blocks["curricula_gmm"]
    assert "**not met** (largest +9.0%" in blocks["curricula_overhead"]


def test_from_results_writes_the_blocks_into_the_page(tmp_path):
    import json

    from accelrl.results import REPO

    rec = _protocol_record([0.2, 0.3, 0.4], [0.1, 0.2, 0.3])
    (tmp_path / "r.json").write_text(json.dumps(rec))
    page = tmp_path / "curricula.md"
    page.write_text((REPO / "docs" / "curricula.md").read_text())
    assert (
        bench_curricula.main(["--from_results", str(tmp_path / "r.json"), "--page", str(page)]) == 0
    )
    text = page.read_text()
    assert "| ALP-GMM - Random (paired) | +0.100 [+0.100, +0.100] beats" in text

    def block(s, name):  # the text between a block's markers
        return s.split(f"<!-- {name}: begin -->")[1].split(f"<!-- {name}: end -->")[0]

    before = (REPO / "docs" / "curricula.md").read_text()
    assert block(text, "curricula_gmm") == block(before, "curricula_gmm")  # not in the record: kept
    assert block(text, "curricula_pendulum_dynamics") != block(
        before, "curricula_pendulum_dynamics"
    )


def test_protocol_options_are_fixed_and_quick_stays_out_of_docs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(["--protocol", "pendulum_dynamics", "--seeds", "40"])
    assert exc.value.code == 2 and "--protocol fixes --seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(["--quick", "--out", str(bench_curricula.ROOT / "docs" / "x")])
    assert exc.value.code == 2 and "never write" in capsys.readouterr().err


def test_protocol_records_the_arguments_it_parsed(tmp_path, monkeypatch):
    # called in-process, the record names the arguments given, not the caller's sys.argv
    monkeypatch.setattr(bench_curricula, "run_teachers", lambda *a, **kw: {})
    monkeypatch.setattr(bench_curricula, "page_blocks", lambda record: {})
    monkeypatch.setattr(bench_curricula, "plot", lambda *a, **kw: None)
    argv = ["--protocol", "pendulum_dynamics", "--split", "validation", "--quick",
            "--parts", "teachers", "--out", str(tmp_path)]  # fmt: skip
    assert bench_curricula.main(argv) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["command"] == " ".join(["python", bench_curricula.GENERATOR, *argv])
