"""Every Python block in the README runs as written, each in a fresh namespace."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

RUNNER = """
import sys, traceback
blocks = sys.stdin.read().split("\\n# ---- next block ----\\n")
failed = 0
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"README block {i}", "exec"), {"__name__": "__readme__"})
    except Exception:
        failed += 1
        print(f"README block {i} failed:\\n{code}", file=sys.stderr)
        traceback.print_exc()
print("BLOCKS", len(blocks), "FAILED", failed)
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_blocks_and_the_extractor_sees_them():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 6
    assert python_blocks("```python\nx = 1\n```\n```\nshell\n```") == ["x = 1\n"]


@pytest.mark.slow  # budget: ~90 s here (imports once, trains three tiny agents)
def test_readme_python_blocks_run():
    blocks = python_blocks(README.read_text())
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input="\n# ---- next block ----\n".join(blocks),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=README.parent,
    )
    assert f"BLOCKS {len(blocks)} FAILED 0" in proc.stdout, proc.stderr[-4000:]
