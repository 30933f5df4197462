"""Which marrow tissue does an MRI signal pattern fit best?

The observed signal on each sequence (``t1``, ``t2``, ``stir``, ``in_phase``, ``opposed_phase`` or its
alias ``chemical_shift``, ``dwi``, ``adc``, ``t1_gd_fs``) is compared with the expected signal of every
tissue in ``tables/marrow_signal.yaml`` (fatty marrow, red marrow, benign oedema, lytic and blastic
metastasis, typical haemangioma, discogenic change, discitis).  Whether the process crosses the disc space
is compared with ``tables/disc_space_crossing.yaml``.  Per tissue and finding the outcome is a match, a
mismatch, ``compatible`` (the table says the signal is variable) or ``no_data`` (the table has no row);
tissues are ranked by matches minus mismatches.  The ranking measures agreement with the table, not a
probability; inferred (draft) table cells are flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.results import Citer, Component, Notice, Result
from spinemets.validation import parse

TABLE = "marrow_signal"
DISC_TABLE = "disc_space_crossing"
DISC = "crosses_disc_space"
UNKNOWN = {"unknown", "not_assessed", "not_done", "indeterminate", ""}

INTENSITY = ("hyperintense", "hypointense", "isointense")
# The observation vocabulary per sequence (the signal words of the marrow_signal table).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "t1": INTENSITY,
    "t2": INTENSITY,
    "stir": INTENSITY,
    "in_phase": INTENSITY,
    "opposed_phase": ("drop", "no_drop"),
    "dwi": ("restricted", "not_restricted"),
    "adc": INTENSITY,
    "t1_gd_fs": ("enhancing", "not_enhancing"),
}
SEQUENCES = tuple(VOCABULARY)
# Spellings accepted for the table's words.  On fat-suppressed post-gadolinium T1, the table codes
# suppressed fatty marrow as hypointense, that is not enhancing.
ALIASES: dict[str, dict[str, str]] = {
    "adc": {"high": "hyperintense", "low": "hypointense"},
    "opposed_phase": {"signal_drop": "drop", "no_signal_drop": "no_drop", "loss": "drop", "no_loss": "no_drop"},
    "t1_gd_fs": {"enhancement": "enhancing", "no_enhancement": "not_enhancing", "hyperintense": "enhancing",
                 "hypointense": "not_enhancing", "non_enhancing": "not_enhancing"},
    "dwi": {"no_restriction": "not_restricted", "unrestricted": "not_restricted", "facilitated": "not_restricted"},
}
VARIABLE = "variable"

# Statements this module applies.
DISC_POINTER = "ddx.metastases_respect_disc"
DISCITIS = "ddx.discitis_osteomyelitis"
T1_REFERENCE = "mri.t1_metastasis_below_muscle_and_disc"
T1_DIFFUSE_PITFALL = "mri.t1_diffuse_infiltration_pitfall"

Outcome = Literal["match", "mismatch", "compatible", "no_data"]


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def normalise(sequence: str, value: Any) -> str | None:
    """The table's word for an observed signal; None when not known."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a signal word, got {value!r}; allowed values: {_allowed(sequence)}")
    key = _norm(value)
    if key in UNKNOWN:
        return None
    key = ALIASES.get(sequence, {}).get(key, key)
    if key not in VOCABULARY[sequence]:
        raise ValueError(f"{value!r} is not allowed; allowed values: {_allowed(sequence)}")
    return key


def _allowed(sequence: str) -> str:
    return ", ".join(repr(v) for v in VOCABULARY[sequence]) + " (or 'unknown')"


class MarrowInput(BaseModel):
    """Observed signal of one lesion per sequence; leave out or 'unknown' what was not acquired or not assessed."""

    model_config = ConfigDict(extra="forbid")

    t1: str | None = Field(default=None, description="T1 spin echo, judged against muscle and disc")
    t2: str | None = None
    stir: str | None = None
    in_phase: str | None = None
    opposed_phase: str | None = Field(default=None, description="drop / no_drop relative to in-phase")
    chemical_shift: str | None = Field(default=None, description="alias of opposed_phase: drop / no_drop")
    dwi: str | None = Field(default=None, description="restricted / not_restricted")
    adc: str | None = Field(default=None, description="hypointense (low) / hyperintense (high) / isointense")
    t1_gd_fs: str | None = Field(default=None, description="fat-suppressed post-gadolinium T1: enhancing / not_enhancing")
    crosses_disc_space: bool | None = Field(default=None, description="the process extends across the disc space")

    @field_validator(*SEQUENCES, mode="before")
    @classmethod
    def _signal(cls, v: Any, info: Any) -> str | None:
        return normalise(info.field_name, v)

    @field_validator("chemical_shift", mode="before")
    @classmethod
    def _chemical_shift(cls, v: Any) -> str | None:
        return normalise("opposed_phase", v)

    @field_validator("crosses_disc_space", mode="before")
    @classmethod
    def _crosses(cls, v: Any) -> bool | None:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str) and _norm(v) in UNKNOWN:
            return None
        raise ValueError(f"expected true, false or null, got {v!r}")


class Check(BaseModel):
    """One finding compared with one tissue's expected signal."""

    finding: str = Field(description="a sequence, or crosses_disc_space")
    observed: str
    expected: str | None = None
    outcome: Outcome
    kb_item: str | None = None
    draft: bool = False
    refs: list[int] = Field(default_factory=list)


class TissueMatch(BaseModel):
    rank: int = Field(description="1 = best; tied tissues share a rank")
    tissue: str
    label: str
    score: int = Field(description="matches minus mismatches")
    matches: list[str] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)
    compatible: list[str] = Field(default_factory=list, description="findings where the table gives variable signal")
    no_data: list[str] = Field(default_factory=list, description="findings the table has no row for, for this tissue")
    checks: list[Check] = Field(default_factory=list)


class MarrowResult(Result):
    instrument: str = "marrow"
    observed: dict[str, str] = Field(default_factory=dict)
    ranking: list[TissueMatch] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        lines = []
        for t in self.ranking:
            parts = [f"{len(t.matches)} match" + ("" if len(t.matches) == 1 else "es")]
            if t.matches:
                parts[-1] += f" ({', '.join(t.matches)})"
            parts.append(f"{len(t.mismatches)} mismatch" + ("" if len(t.mismatches) == 1 else "es"))
            if t.mismatches:
                parts[-1] += " (" + ", ".join(_mismatch(t, f) for f in t.mismatches) + ")"
            if t.compatible:
                parts.append(f"variable on {', '.join(t.compatible)}")
            if t.no_data:
                parts.append(f"no data for {', '.join(t.no_data)}")
            refs = sorted({n for c in t.checks for n in c.refs})
            draft = " DRAFT" if any(c.draft for c in t.checks if c.outcome != "no_data") else ""
            ref_text = f" [{','.join(map(str, refs))}]" if refs else ""
            lines.append(f"  {t.rank}. {t.label} (score {t.score:+d}): {'; '.join(parts)}{draft}{ref_text}")
        return lines


def _mismatch(t: TissueMatch, finding: str) -> str:
    check = next(c for c in t.checks if c.finding == finding)
    return f"{finding} expected {check.expected}"


def _label(tissue: str) -> str:
    return tissue.replace("_", " ")


def marrow_signal(data: MarrowInput | Mapping[str, Any] | None, kb: KnowledgeBase | None = None) -> MarrowResult:
    """Rank the tissues of the marrow-signal table by how well an observed pattern fits; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(MarrowInput, data, "marrow")
    if inp.opposed_phase and inp.chemical_shift and inp.opposed_phase != inp.chemical_shift:
        raise ContradictoryInputError(
            ["marrow.opposed_phase", "marrow.chemical_shift"],
            f"opposed_phase is {inp.opposed_phase} but chemical_shift is {inp.chemical_shift}; they are the same finding",
        )
    cite = Citer(kb)
    table = kb.table(TABLE)
    disc_rows = {str(r["tissue"]): r for r in kb.table(DISC_TABLE).rows}

    observed: dict[str, str] = {}
    for seq in SEQUENCES:
        value = getattr(inp, seq) or (inp.chemical_shift if seq == "opposed_phase" else None)
        if value is not None:
            observed[seq] = value
    findings: dict[str, str] = dict(observed)
    if inp.crosses_disc_space is not None:
        findings[DISC] = "yes" if inp.crosses_disc_space else "no"

    tissues = list(dict.fromkeys(str(r["tissue"]) for r in table.rows))
    if not findings:
        return MarrowResult(
            status="insufficient_data",
            summary="insufficient data: no sequence signal and no disc-space finding given",
            missing=[f"marrow.{s}" for s in SEQUENCES] + [f"marrow.{DISC}"],
            **cite.common(),  # type: ignore[arg-type]
        )

    matches: list[TissueMatch] = []
    for tissue in tissues:
        checks = []
        for finding, value in findings.items():
            if finding == DISC:
                checks.append(_disc_check(tissue, bool(inp.crosses_disc_space), disc_rows, cite))
                continue
            row = next((r for r in table.where(tissue=tissue, sequence=finding)), None)
            if row is None:
                checks.append(Check(finding=finding, observed=value, outcome="no_data"))
                continue
            expected = ALIASES.get(finding, {}).get(str(row["signal"]), str(row["signal"]))
            outcome: Outcome = "compatible" if expected == VARIABLE else ("match" if expected == value else "mismatch")
            checks.append(Check(
                finding=finding, observed=value, expected=expected, outcome=outcome,
                kb_item=f"{TABLE}.{row.id}", draft=row.is_draft, refs=cite.cite_row(TABLE, row),
            ))
        by = {o: [c.finding for c in checks if c.outcome == o] for o in ("match", "mismatch", "compatible", "no_data")}
        matches.append(TissueMatch(
            rank=0, tissue=tissue, label=_label(tissue), score=len(by["match"]) - len(by["mismatch"]),
            matches=by["match"], mismatches=by["mismatch"], compatible=by["compatible"], no_data=by["no_data"],
            checks=checks,
        ))

    ranking = sorted(matches, key=_sort_key(tissues))
    previous: tuple[int, int, int] | None = None
    for i, t in enumerate(ranking, start=1):
        key = (t.score, len(t.mismatches), len(t.matches))
        t.rank = ranking[i - 2].rank if previous == key else i
        previous = key

    components = [Component(name=k, value=v) for k, v in findings.items()]
    informative = any(t.matches or t.mismatches or t.compatible for t in ranking)
    if not informative:
        given = ", ".join(findings)
        result = MarrowResult(
            status="insufficient_data",
            summary=f"insufficient data: the table has no expected signal for {given} in any tissue",
            components=components,
            missing=[f"marrow.{s}" for s in SEQUENCES if s not in findings and s != "in_phase"],
            observed=observed,
            ranking=ranking,
            **cite.common(),  # type: ignore[arg-type]
        )
        return result.model_copy(update=cite.common())

    result = MarrowResult(
        status="complete",
        summary=_summary(ranking),
        components=components,
        observed=observed,
        ranking=ranking,
        **cite.common(),  # type: ignore[arg-type]
    )
    result.notices.extend(_notices(inp, observed, cite))
    return result.model_copy(update=cite.common())


def _sort_key(tissues: list[str]) -> Any:
    def key(t: TissueMatch) -> tuple[int, int, int, int]:
        return (-t.score, len(t.mismatches), -len(t.matches), tissues.index(t.tissue))

    return key


def _disc_check(tissue: str, crosses: bool, rows: dict[str, Any], cite: Citer) -> Check:
    observed = "yes" if crosses else "no"
    row = rows.get(tissue)
    if row is None:
        return Check(finding=DISC, observed=observed, outcome="no_data")
    expected = bool(row["crosses_disc_space"])
    return Check(
        finding=DISC, observed=observed, expected="yes" if expected else "no",
        outcome="match" if expected == crosses else "mismatch",
        kb_item=f"{DISC_TABLE}.{row.id}", draft=row.is_draft, refs=cite.cite_row(DISC_TABLE, row),
    )


def _summary(ranking: list[TissueMatch]) -> str:
    best = [t for t in ranking if t.rank == 1]
    head = " and ".join(t.label for t in best)

    def counts(t: TissueMatch) -> str:
        compared = len(t.matches) + len(t.mismatches)
        return f"{len(t.matches)} of {compared} compared finding{'s' if compared != 1 else ''} match"

    if len(best) > 1:
        text = f"tie between {head} ({counts(best[0])})"
    else:
        text = f"best fit: {head} ({counts(best[0])})"
    rest = [t for t in ranking if t.rank != 1]
    if rest:
        text += f"; next: {rest[0].label} ({counts(rest[0])})"
    return text


def _notices(inp: MarrowInput, observed: dict[str, str], cite: Citer) -> list[Notice]:
    notices = [cite.notice(
        "method",
        "The ranking counts agreement with the expected signal in the knowledge-base table; it is not a "
        "probability, signal patterns of these tissues overlap, and tissues with fewer table rows can rank high "
        "on little evidence.",
    )]
    if inp.crosses_disc_space:
        notices.append(cite.notice(
            "disc_space",
            "The process crosses the disc space, which points to discitis/osteomyelitis: bone metastases do not "
            "usually cross the disc.",
            kb_items=[DISC_POINTER, DISCITIS],
        ))
    if "t1" in observed:
        notices.append(cite.notice(
            "t1_reference", cite.kb.statement(T1_REFERENCE).text, kb_items=[T1_REFERENCE]
        ))
        if observed["t1"] != "hypointense":
            notices.append(cite.notice(
                "t1_pitfall", cite.kb.statement(T1_DIFFUSE_PITFALL).text, kb_items=[T1_DIFFUSE_PITFALL]
            ))
    if "opposed_phase" in observed:
        notices.append(cite.notice(
            "quantitative",
            "A measured opposed-phase signal drop can be compared with each published cut-off in the quantitative "
            "interpretation.",
        ))
    return notices
