"""The results protocol's helpers: provenance, the dirty-tree refusal, paired intervals, verdicts."""

import json
import subprocess

import numpy as np
import pytest

from accelrl import results as R


def _repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for k, v in (("user.email", "t@t"), ("user.name", "t")):
        subprocess.run(["git", "-C", str(tmp_path), "config", k, v], check=True)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "a"], check=True)
    return tmp_path


def test_provenance_records_commit_and_tree_state(tmp_path):
    repo = _repo(tmp_path)
    rec = R.provenance(["python", "x.py", "--seeds", 1], repo=repo)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert rec["command"] == "python x.py --seeds 1"
    assert rec["commit"] == head and rec["clean_tree"] is True
    assert rec["versions"]["numpy"] == np.__version__
    (repo / "a.txt").write_text("2")  # a tracked change makes the tree dirty
    assert R.provenance("x", repo=repo)["clean_tree"] is False


def test_provenance_outside_a_checkout(tmp_path):
    rec = R.provenance("x", repo=tmp_path)
    assert rec["commit"] is None and rec["clean_tree"] is None


def test_write_results_refuses_a_dirty_tree_unless_told(tmp_path):
    rec = {"command": "c", "commit": "abc", "clean_tree": False, "rows": [1]}
    with pytest.raises(R.DirtyTreeError, match="uncommitted"):
        R.write_results(tmp_path / "r.json", rec)
    assert not (tmp_path / "r.json").exists()
    R.write_results(tmp_path / "r.json", rec, allow_dirty=True)
    assert R.load_results(tmp_path / "r.json")["rows"] == [1]
    assert "uncommitted" in R.provenance_line(rec)
    with pytest.raises(ValueError, match="commit"):
        R.write_results(tmp_path / "s.json", {"command": "c"})


def test_load_results_refuses_files_that_are_not_results(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="lacks command"):
        R.load_results(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        R.load_results(tmp_path / "b.json")


def test_quick_runs_never_write_into_docs(tmp_path):
    docs = tmp_path / "docs"
    with pytest.raises(ValueError, match="never write"):
        R.check_output(docs / "results" / "x.json", quick=True, docs=docs)
    assert R.check_output(docs / "x.json", quick=False, docs=docs) == (docs / "x.json").resolve()
    assert R.check_output(tmp_path / "out", quick=True, docs=docs)


def test_paired_bootstrap_brackets_the_mean_difference_and_pairs_units():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 10, 40)  # large between-unit spread, small paired effect
    a, b = base + 1.0 + rng.normal(0, 0.1, 40), base
    point, low, high = R.paired_bootstrap(a, b, reps=2000)
    assert low < point < high and low > 0.9 and high < 1.1
    assert R.verdict(low, high) == "beats"
    # Unpaired resampling of the same numbers could not tell them apart: pairing matters.
    assert np.std(a) > 5
    # A wrong answer: equal values give an interval around zero, no claim.
    point, low, high = R.paired_bootstrap(base, base + rng.normal(0, 0.1, 40), reps=2000)
    assert R.verdict(low, high) == "no difference shown"
    assert R.paired_bootstrap(a, b, reps=500, seed=3) == R.paired_bootstrap(a, b, reps=500, seed=3)


def test_paired_bootstrap_refuses_bad_input():
    with pytest.raises(ValueError, match="equal lengths"):
        R.paired_bootstrap([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="two units"):
        R.paired_bootstrap([1], [2])
    with pytest.raises(ValueError, match="finite"):
        R.paired_bootstrap([1, np.nan], [2, 3])


def test_verdict_directions():
    assert R.verdict(0.1, 0.5) == "beats" and R.verdict(-0.5, -0.1) == "worse"
    assert R.verdict(-0.5, -0.1, higher_is_better=False) == "beats"
    assert R.verdict(-0.1, 0.1) == "no difference shown"
    assert R.target_line("x", False, "r") == "- x: **not met** (r)"


def test_replace_block_replaces_only_its_block_and_refuses_bad_markers():
    begin, end = R.block_markers("x")
    assert (begin, end) == ("<!-- x: begin -->", "<!-- x: end -->")
    text = f"head\n{begin}\nold\n{end}\nmid\n<!-- y: begin -->\nkeep\n<!-- y: end -->\n"
    new = R.replace_block(text, "x", "\nnew body\n")
    assert new == f"head\n{begin}\nnew body\n{end}\nmid\n<!-- y: begin -->\nkeep\n<!-- y: end -->\n"
    assert R.replace_block(new, "x", "new body") == new  # idempotent
    for bad in ("no markers", f"{end}\n{begin}", f"{begin}{end}{begin}{end}"):
        with pytest.raises(ValueError, match="exactly one pair"):
            R.replace_block(bad, "x", "b")
    with pytest.raises(ValueError, match="one line"):
        R.block_markers("a-->b")


def test_write_blocks_and_regenerate(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("a\n<!-- t: begin -->\n<!-- t: end -->\nb\n")
    rec = {"command": "c", "commit": "0" * 40, "clean_tree": True, "rows": [1, 2]}
    calls = []

    def render(record, path):
        calls.append(path)
        R.write_blocks(path, {"t": f"rows {record['rows']}\n\n{R.provenance_line(record)}"})

    assert R.regenerate(["--quick"], render) is False and not calls  # not asked: nothing parsed
    (tmp_path / "r.json").write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match="lacks generator, page"):
        R.regenerate(["--from_results", str(tmp_path / "r.json")], render)
    rec.update(generator="results.py", page="README.md")  # files of this checkout
    (tmp_path / "r.json").write_text(json.dumps(rec))
    assert R.regenerate(["--from_results", str(tmp_path / "r.json"), "--page", str(page)], render)
    assert page.read_text() == (
        "a\n<!-- t: begin -->\nrows [1, 2]\n\nGenerated from `c` at commit `0000000000` "
        "(clean tree).\n<!-- t: end -->\nb\n"
    )
    with pytest.raises(SystemExit):  # rendering takes no other option
        R.regenerate(["--from_results", str(tmp_path / "r.json"), "--quick"], render)
    rec["page"] = "docs/nothing.md"
    with pytest.raises(ValueError, match="not a file"):
        R.check_page_record(rec)


def test_results_record_names_generator_and_page(tmp_path):
    rec = R.results_record(["python", "results.py"], "results.py", "README.md")
    assert rec["generator"] == "results.py" and rec["page"] == "README.md"
    assert {"command", "commit", "clean_tree", "versions", "machine"} <= set(rec)
    with pytest.raises(ValueError, match="generator"):
        R.results_record("c", "/abs/x.py", "README.md")
    with pytest.raises(ValueError, match="page"):
        R.results_record("c", "results.py", "docs/missing.md")


def test_unpaired_bootstrap_separates_distinct_samples_only():
    rng = np.random.default_rng(1)
    a, b = rng.normal(-18.0, 0.3, 5), rng.normal(-23.0, 0.5, 4)  # lengths may differ
    point, low, high = R.unpaired_bootstrap(a, b, reps=2000)
    assert point == pytest.approx(a.mean() - b.mean())
    assert low < point < high and R.verdict(low, high) == "beats"
    # A wrong answer: two draws of one distribution give no claim.
    same = rng.normal(0.0, 1.0, 12)
    _, low, high = R.unpaired_bootstrap(same[:6], same[6:], reps=2000)
    assert R.verdict(low, high) == "no difference shown"
    with pytest.raises(ValueError, match="two values"):
        R.unpaired_bootstrap([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        R.unpaired_bootstrap([1.0, np.inf], [1.0, 2.0])


def test_options_command_names_only_the_fields_that_differ():
    import dataclasses

    @dataclasses.dataclass
    class Opts:
        steps: int = 10
        quick: bool = False
        search: bool = True
        seeds: tuple[int, ...] = (0, 1)

    assert R.options_command("s.py", Opts()) == "python s.py"
    got = R.options_command("s.py", Opts(steps=5, quick=True, search=False, seeds=(3,)))
    assert got == "python s.py --steps 5 --quick --no-search --seeds 3"
