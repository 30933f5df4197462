"""docs/interpretation.md: every Python example runs, and prints exactly the text block that follows it."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "interpretation.md").read_text()
# A python block, optionally followed directly by a text block holding its exact output.
EXAMPLES = re.findall(r"```python\n(.*?)```\n(?:```text\n(.*?)```)?", DOC, re.S)


def test_doc_has_an_example_per_function():
    code = "\n".join(block for block, _ in EXAMPLES)
    for name in ("fracture_differential", "marrow_signal", "quantitative", "likely_primaries"):
        assert f"{name}(" in code, name
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("block,expected", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_doc_example(block, expected):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/interpretation.md", "exec"), {})
    if expected:
        assert out.getvalue() == expected
