"""Every example in the README and in docs/ runs, and shows what the code prints today.

* A ```console block holds `$ spinemets ...` commands, each followed by what it prints.  One line shown: the
  command's first line must equal it.  Several lines shown: they must be the whole output (standard output,
  then standard error), where a line `...` stands for any number of lines left out.  Only spinemets commands
  go in console blocks.
* A ```python block runs.
* A shell example in docs/ (```sh, ```bash, ```shell) is not run, and says so: its first line, or the line
  before it, contains "not run".
* A `$ spinemets` line anywhere else (a bare ``` block) is an example that escaped these checks: an error.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SHELLS = {"sh", "bash", "shell", "zsh"}
ELISION = "..."
# Shell blocks in docs owned by other engineers, not yet marked "not run" (docs -> how many may stay unmarked).
# A ratchet: the count may only fall; set an entry to 0 (or drop it) once its document is marked.
UNMARKED_ALLOWED: dict[str, int] = {}


def fences(doc: Path) -> list[tuple[str, str, int]]:
    """(language, body, line of the opening fence) for every fenced block."""
    text = doc.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def console_examples(doc: Path) -> list[tuple[str, list[str], int]]:
    """(command after `$ spinemets `, the lines shown after it, line number) for every console block."""
    out = []
    for lang, body, line in fences(doc):
        if lang != "console":
            continue
        current: tuple[str, list[str], int] | None = None
        for offset, text in enumerate(body.splitlines(), 1):
            if text.startswith("$ "):
                current = (text[2:], [], line + offset)
                out.append(current)
            elif current is None:
                raise AssertionError(f"{doc.name}:{line}: a console block starts with a `$ ` command")
            else:
                current[1].append(text)
    return out


EXAMPLES = [
    pytest.param(cmd, shown, id=f"{doc.name}:{line}:{cmd[:40]}")
    for doc in DOCS
    for cmd, shown, line in console_examples(doc)
]


def expected_exit(shown: list[str]) -> int:
    """The exit code an example's shown output implies (README: 0 success, 2 invalid input, 3 insufficient data)."""
    first = shown[0]
    if first.startswith("error:"):
        return 2
    if "insufficient data" in first or first.startswith("ASK: declined"):
        return 3  # a declined question is answered with exit 3 as well (nothing the knowledge base can say)
    return 0


def matches(shown: list[str], actual: list[str]) -> bool:
    """The shown lines are the actual output, `...` standing for any run of lines."""
    if len(shown) == 1:
        return bool(actual) and actual[0] == shown[0]
    pattern = "".join(r"(?:[^\n]*\n)*?" if line == ELISION else re.escape(line) + r"\n" for line in shown)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def test_readme_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("command,shown", EXAMPLES)
def test_console_example(command, shown):
    assert command.startswith("spinemets "), f"only spinemets commands are run; show {command!r} in a shell block"
    assert shown, f"{command}: show at least the first line it prints"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        r = run_cli(*shlex.split(command)[1:])
    finally:
        os.chdir(cwd)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == expected_exit(shown), (r.returncode, shown[0])
    actual = r.stdout.splitlines() + r.stderr.splitlines()
    assert matches(shown, actual), "shown:\n" + "\n".join(shown) + "\n\nactual:\n" + "\n".join(actual)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_python_blocks_run(doc):
    for lang, block, line in fences(doc):
        if lang == "python":
            exec(compile("\n" * (line) + block, str(doc), "exec"), {})


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_no_example_escapes_the_checks(doc):
    for lang, block, line in fences(doc):
        if lang != "console":
            assert not re.search(r"^\$ spinemets", block, re.M), (
                f"{doc.name}:{line}: `$ spinemets` in a ```{lang} block is never run; use ```console")


def unmarked_shell_blocks(doc: Path) -> list[int]:
    lines = doc.read_text().splitlines()
    unmarked = []
    for lang, block, line in fences(doc):
        if lang not in SHELLS:
            continue
        before = next((text for text in reversed(lines[: line - 1]) if text.strip()), "")
        first = block.splitlines()[0] if block.strip() else ""
        if "not run" not in before and "not run" not in first:
            unmarked.append(line)
    return unmarked


@pytest.mark.parametrize("doc", DOCS[1:], ids=lambda d: d.name)
def test_shell_examples_in_docs_say_they_are_not_run(doc):
    unmarked = unmarked_shell_blocks(doc)
    assert len(unmarked) <= UNMARKED_ALLOWED.get(doc.name, 0), (
        f"{doc.name}: shell blocks at lines {unmarked} are not run by the tests and do not say so; "
        "write 'not run' in the line before, or show them as ```console with their output")


def test_the_checks_catch_what_they_should():
    """Finding (issue 16): docs showed output of an older knowledge base, in blocks no test looked at."""
    assert matches(["a", ELISION, "d"], ["a", "b", "c", "d"]) and matches(["a", ELISION], ["a"])
    assert not matches(["a", "c"], ["a", "b", "c"])            # several lines shown: the whole output
    assert not matches(["a", ELISION, "x"], ["a", "b"])
    assert matches(["first"], ["first", "more"])                # one line shown: the first line
    assert not matches(["Knowledge base 2026.11.2"], ["Knowledge base 2026.12.1"])


def test_readme_opens_with_two_commands():
    head = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0:2] for line in head] == [["make", "run"], ["make", "test"]]


def test_readme_says_how_to_put_spinemets_on_path():
    """Finding (issue 16): README examples call `spinemets`, but `make` only builds .venv."""
    opening = README.split("## ", 1)[0]
    assert ". .venv/bin/activate" in opening and "make shell" in opening
    assert "PORT=" in opening
