"""Mutation testing in CI: the subset (scripts/mutation.py without --full: the ESCC grade) must reach its floor.

The full run over the clinical core is on demand (docs/testing.md); this test runs the CI-sized subset in a
scratch copy and fails when a module falls below its floor, so a weakened test of the ESCC grade, the SINS score
or the audit chain is caught.  The parsing of mutmut's output is checked on a fixed sample first.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutation  # noqa: E402

SAMPLE = """\
    spinemets.scores.escc.x_parse_grade__mutmut_1: survived
    spinemets.scores.escc.x_parse_grade__mutmut_2: killed
    spinemets.scores.escc.x_escc__mutmut_13: timeout
    spinemets.store.audit.x\u01c1AuditLog\u01c1verify__mutmut_4: killed
    spinemets.store.audit.x\u01c1AuditLog\u01c1verify__mutmut_5: no tests
    spinemets.scores.sins.x_sins__mutmut_7: skipped
"""


def test_results_are_counted_per_module():
    per = mutation.parse_results(SAMPLE)
    assert per["spinemets/scores/escc.py"] == Counter({"survived": 1, "killed": 1, "timeout": 1})
    assert per["spinemets/store/audit.py"] == Counter({"killed": 1, "no tests": 1})
    assert per["spinemets/scores/sins.py"] == Counter({"skipped": 1})
    assert mutation.survivors(SAMPLE) == [
        "spinemets.scores.escc.x_parse_grade__mutmut_1",
        "spinemets.store.audit.x\u01c1AuditLog\u01c1verify__mutmut_5",
    ]


def test_score_counts_timeouts_as_caught_and_leaves_out_accepted_and_skipped():
    per = mutation.parse_results(SAMPLE)
    assert mutation.score(per["spinemets/scores/escc.py"]) == pytest.approx(200 / 3)
    assert mutation.score(per["spinemets/scores/escc.py"], accepted=1) == 100.0
    assert mutation.score(per["spinemets/scores/sins.py"]) == 100.0  # nothing left to score


def test_every_accepted_mutant_has_a_reason_and_names_a_known_module():
    accepted = mutation.load_accepted()
    assert accepted, "the accepted equivalent mutants are listed in tests/data/mutation_equivalent/"
    for name, reason in accepted.items():
        module = mutation._module_of(name.rsplit(".", 1)[0])
        assert module in mutation.MODULES, name
        assert len(reason.split()) >= 4, f"{name}: give the reason in a sentence"


@pytest.mark.slow
def test_ci_subset_reaches_its_floors(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutation.py"), "--workdir", str(tmp_path / "m")],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600)
    table = "\n".join(line for line in r.stdout.splitlines() if line.startswith(("module", "spinemets/")))
    assert r.returncode == 0, f"mutation subset below its floors:\n{table}\n{r.stderr[-2000:]}"
    for module in mutation.CI_SUBSET:
        assert module in table
