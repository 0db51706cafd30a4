"""Every raw results file under docs/results/ names its generator and page, and regenerating the
page from the file alone (``<generator> --from_results FILE --page COPY``) gives the committed
page byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from accelrl.results import REPO, check_page_record, load_results

RESULTS = sorted((REPO / "docs" / "results").rglob("*.json"))


def test_there_are_results_files():
    assert RESULTS, "docs/results/ holds no raw results file"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(REPO / "docs")))
def test_page_regenerates_unchanged_from_its_results_file(path, tmp_path):
    record = load_results(path)
    check_page_record(record)
    assert isinstance(record["clean_tree"], bool | None)
    page = REPO / record["page"]
    copy = tmp_path / page.name
    shutil.copy(page, copy)
    out = subprocess.run(
        [sys.executable, str(REPO / record["generator"]), "--from_results", str(path), "--page",
         str(copy)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert copy.read_text() == page.read_text(), (
        f"{record['page']} differs from what {record['generator']} renders from {path.name}; "
        f"run {record['generator']} --from_results {path.relative_to(REPO)}"
    )


def test_a_changed_results_file_changes_the_page(tmp_path):
    """The check above can fail: a results file with another commit renders another page."""
    path = REPO / "docs" / "results" / "relax.json"
    record = load_results(path)
    record["commit"] = "f" * 40
    changed = tmp_path / "relax.json"
    import json

    changed.write_text(json.dumps(record))
    copy = tmp_path / "relax.md"
    shutil.copy(REPO / record["page"], copy)
    subprocess.run(
        [sys.executable, str(REPO / record["generator"]), "--from_results", str(changed), "--page",
         str(copy)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert copy.read_text() != (REPO / record["page"]).read_text()
    assert "commit `ffffffffff`" in copy.read_text()


def test_from_results_refuses_a_file_without_page_keys(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"command": "c", "commit": null, "clean_tree": null}')
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench/relax_experiment.py"), "--from_results",
         str(bad)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0 and "lacks generator, page" in out.stderr


PENDING: set[tuple[str, str]] = set()
"""Result blocks not yet measured under the protocol: each says so on its page and names the
command that generates it. Regenerating one removes it from this list (the test below fails
until it is removed)."""

PENDING_MARKS = ("Typed by hand", "Not measured under the protocol yet")


def result_blocks(root=REPO / "docs"):
    """``(page relative to docs/, block name, body)`` of every generated block in docs/ and
    the README (named ``../README.md``)."""
    import re

    for page in [*sorted(root.rglob("*.md")), root.parent / "README.md"]:
        text = page.read_text()
        marker = r"^<!-- (\S+): begin -->$(.*?)^<!-- \1: end -->$"  # markers on their own line
        for m in re.finditer(marker, text, re.S | re.M):
            name = str(page.relative_to(root)) if page.is_relative_to(root) else "../README.md"
            yield name, m.group(1), m.group(2)


def pending_problems(blocks, pending):
    """What is wrong with the blocks against the pending list (empty: nothing)."""
    problems = []
    seen = set()
    for page, name, body in blocks:
        marked = any(mark in body for mark in PENDING_MARKS)
        seen.add((page, name))
        if (page, name) in pending and not marked:
            problems.append(f"{page} {name}: regenerated; remove it from PENDING")
        elif (page, name) not in pending and marked:
            problems.append(f"{page} {name}: says it is typed by hand but is not in PENDING")
        elif (page, name) not in pending and "commit `" not in body:
            problems.append(f"{page} {name}: no provenance line (commit) in a generated block")
        elif (page, name) in pending and "python scripts/" not in body.replace("\n", " "):
            problems.append(f"{page} {name}: a pending block must name the command that makes it")
    problems += [f"{p} {n}: in PENDING but not in docs" for p, n in sorted(pending - seen)]
    return problems


def test_every_result_block_is_generated_or_says_it_is_pending():
    assert pending_problems(list(result_blocks()), PENDING) == []


def test_the_pending_check_catches_each_mistake():
    generated = ("a.md", "x", "Rendered at commit `abc`.\n| t |")
    pending = ("a.md", "y", "*Typed by hand; regenerate with `python scripts/bench/y.py`.*")
    assert pending_problems([generated, pending], {("a.md", "y")}) == []
    assert "remove it from PENDING" in pending_problems([generated], {("a.md", "x")})[0]
    assert "not in PENDING" in pending_problems([pending], set())[0]
    assert "no provenance" in pending_problems([("a.md", "z", "| t |")], set())[0]
    assert (
        "name the command"
        in pending_problems([("a.md", "y", "*Typed by hand.*")], {("a.md", "y")})[0]
    )
    assert "not in docs" in pending_problems([], {("a.md", "y")})[0]


def test_the_results_index_is_current():
    from accelrl.results import INDEX, results_index

    assert INDEX.read_text() == results_index(), "run: python -m accelrl.results index"


def test_the_results_index_flags_a_file_made_from_a_dirty_tree(tmp_path):
    import json

    from accelrl.results import results_index

    root = tmp_path / "docs" / "results"
    (root / "sub").mkdir(parents=True)
    record = json.loads((REPO / "docs" / "results" / "envs.json").read_text())
    (root / "a.json").write_text(json.dumps(record))
    (root / "sub" / "b.json").write_text(json.dumps({**record, "clean_tree": False}))
    rows = [line for line in results_index(root).splitlines() if line.startswith("| `docs/")]
    assert [r.split("`")[1] for r in rows] == ["docs/results/sub/b.json", "docs/results/a.json"]
    assert "**(uncommitted changes)**" in rows[0] and "uncommitted" not in rows[1]
    (root / "c.json").write_text(json.dumps({"command": "x"}))
    with pytest.raises(ValueError, match="lacks"):
        results_index(root)
