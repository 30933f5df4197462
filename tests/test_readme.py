"""Every command shown in the README runs and prints the line the README shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    pytest.param(cmd, line, id=f"{doc.name}:{cmd[:40]}")
    for doc in DOCS
    for cmd, line in re.findall(r"```console\n\$ spinemets (.+)\n(.+)\n```", doc.read_text())
]


def test_readme_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("command,first_line", EXAMPLES)
def test_readme_example(command, first_line):
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        r = run_cli(*shlex.split(command))
    finally:
        os.chdir(cwd)
    assert r.returncode in (0, 3), r.stderr
    assert r.stdout.splitlines()[0] == first_line


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_python_blocks_run(doc):
    for block in re.findall(r"```python\n(.+?)```", doc.read_text(), re.S):
        exec(compile(block, str(doc), "exec"), {})


def test_readme_opens_with_two_commands():
    head = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0:2] for line in head] == [["make", "run"], ["make", "test"]]
