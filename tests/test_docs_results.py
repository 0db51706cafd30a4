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
