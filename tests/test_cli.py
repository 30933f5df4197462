"""The command line: output, --json and exit codes 0 / 2 / 3.

Run in this process (the ``cli`` fixture calls ``spinemets.cli.main``), except one test that runs the installed
console script as a user runs it, standard input piped: the entry point itself works end to end.
"""

from __future__ import annotations

import json

from tests.support import DISCLAIMER, run_cli

FULL_SINS = ["--level", "T12", "--pain", "mechanical", "--lesion", "lytic", "--alignment", "normal",
             "--collapse", "gt50", "--posterolateral", "bilateral"]


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.returncode == 0
    for cmd in ("sins", "escc", "noms", "probability", "pathway", "assess", "schema", "kb"):
        assert cmd in r.stdout


def test_sins_text_and_json(cli):
    r = cli("sins", *FULL_SINS)
    assert r.returncode == 0
    assert r.stdout.startswith("SINS: total 14/18: unstable")
    assert "References" in r.stdout and DISCLAIMER in r.stdout
    r = cli("sins", *FULL_SINS, "--json")
    data = json.loads(r.stdout)
    assert data["total"] == 14 and data["category"] == "unstable" and data["kb_version"]


def test_sins_insufficient_exit_3(cli):
    r = cli("sins", "--level", "T12", "--json")
    assert r.returncode == 3
    data = json.loads(r.stdout)
    assert data["status"] == "insufficient_data" and data["total"] is None
    assert data["possible_min"] == 3 and data["possible_max"] == 18


def test_sins_invalid_exit_2(cli):
    r = cli("sins", "--level", "L6")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: sins.level: 'L6' is not a vertebral level: lumbar levels are L1 to L5"


def test_escc_from_findings(cli):
    r = cli("escc", "--epidural-disease", "yes", "--thecal-sac-deformed", "yes", "--cord-abutted", "no")
    assert r.returncode == 0 and r.stdout.startswith("ESCC: grade 1b (low-grade)")


def test_escc_bad_boolean_is_usage_error(cli):
    r = cli("escc", "--cord-compressed", "perhaps")
    assert r.returncode == 2 and "use yes, no or unknown" in r.stderr


def test_probability_cli(cli):
    r = cli("probability", "--pre-test", "0.1", "--test", "se=0.93,sp=0.85,result=positive", "--json")
    assert r.returncode == 0
    assert abs(json.loads(r.stdout)["post_test_min"] - 0.408) < 0.001


def test_probability_cli_out_of_range(cli):
    r = cli("probability", "--pre-test", "2", "--test", "se=0.9,sp=0.9,result=positive")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: probability.pre_test: input should be less than or equal to 1 (got 2.0)"


def test_assess_stdin_and_schema(cli):
    """The installed console script with a case piped to its standard input (the one subprocess here)."""
    case = {"case_id": "demo-1", "sins": {"level": "L3", "pain": "none", "lesion": "blastic", "alignment": "normal",
                                          "collapse": "none", "posterolateral": "none"}, "escc": {"grade": "0"}}
    r = run_cli("assess", "-", "--json", stdin=json.dumps(case))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["statuses"] == {"sins": "complete", "escc": "complete"}
    assert data["sins"]["total"] == 2
    r = cli("schema")
    schema = json.loads(r.stdout)
    assert schema["title"] == "spinemets case document"
    assert {"sins", "escc", "patient", "probability", "pathway"} <= set(schema["properties"])


def test_assess_insufficient_and_invalid(cli):
    r = cli("assess", "-", stdin=json.dumps({"sins": {"level": "T4"}}))
    assert r.returncode == 3 and "Missing: SINS pain" in r.stdout and "sins.pain" not in r.stdout
    r = cli("assess", "-", stdin="{not json")
    assert r.returncode == 2 and r.stderr.startswith("error: case: not valid JSON")
    r = cli("assess", "-", stdin=json.dumps({"sins": {"lesion": "purple"}}))
    assert r.returncode == 2
    assert r.stderr.strip() == "error: case.sins.lesion: 'purple' is not allowed; allowed values: 'lytic', 'mixed', 'blastic' (or 'unknown')"
    r = cli("assess", "/nonexistent/case.json")
    assert r.returncode == 2 and "cannot read /nonexistent/case.json" in r.stderr
