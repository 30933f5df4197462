"""Pre-fill SINS, ESCC, the fracture differential and the marrow-signal ranking from a report's findings.

Only findings stated present or negated count, and only those about the index level (or about no level in
particular); uncertain, historical, hypothetical and other-level findings pre-fill nothing.  Each value
keeps the phrases it came from.  A value the report does not state stays None (unknown); two findings that
disagree leave it None with a note.  The rules applied here:

* **SINS** (Fisher 2010, ``tables/sins_points.yaml``) and **ESCC** (Bilsky 2010) are pre-filled for a
  neoplastic lesion: when a neoplastic diagnosis is stated or suspected, or when no benign diagnosis
  (haemangioma, bone island, osteoporotic fracture, infection) explains the lesion.  Pain is clinical and
  is filled only when given.
* SINS **bone lesion**: lytic, blastic, or mixed (both stated, or mixed stated).
* SINS **collapse**: a percentage of height lost (a height *reduced to* N% is 100-N% lost), a degree
  (minimal, mild and moderate are under 50%: Genant grades 1-2; complete and vertebra plana over 50%) or a
  comparison (<50%, more than half).  Exactly 50% and "severe" alone (Genant grade 3 is over 40%) decide
  neither category and stay unknown (``sins.caveat.exactly_fifty_percent``, ``fracture.genant_grading``).
  "No collapse" gives ``involved_no_collapse`` when more than half of the body is involved, ``none`` when
  less, unknown when the extent is not stated.
* SINS **posterolateral**: facet, pedicle, costovertebral joint or the posterior elements as a whole;
  bilateral when both sides (or a plural, "both") are named, unilateral when one side is, unknown when the
  side is not stated; ``none`` only when the posterior elements are stated uninvolved.
* SINS **alignment**: subluxation over deformity over normal.
* **ESCC**: the findings as stated (a state of the thecal sac, cord or CSF read by the qualifier pass) and
  a stated grade; the grade follows from :func:`spinemets.scores.escc.escc`.
* **Fracture differential**: only when the index level is fractured or collapsed; besides the stated
  features, lesions elsewhere give ``other_spinal_metastases`` and fractures elsewhere
  ``multiple_compression_fractures``.
* **Marrow signal**: the signal of the index lesion per sequence (not the disc's or the cord's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.levels import INDEX
from spinemets.knowledge.loader import KnowledgeBase
from spinemets.reports.extract import WEAK_EXTENT, Evidence, Finding, Prefill, Prefilled
from spinemets.reports.rules import RuleSet, TargetRow
from spinemets.results import Citer, Component, Notice, trusted

SINS_FIELDS = ("lesion", "collapse", "alignment", "posterolateral")
ANCHORS = frozenset({"lesion", "diagnosis", "collapse", "epidural", "feature", "signal", "oedema", "paravertebral",
                     "infection", "disc_crossing"})
# evidence of a bone lesion besides epidural tissue (a disc extrusion is one too) and a bare signal word (Modic change)
LESION_EVIDENCE = ANCHORS - {"epidural", "signal"}
DEGENERATIVE = "degenerative"
# marrow signal that points to no lesion ("no restricted diffusion", "signal drops on opposed phase")
BENIGN_SIGNAL = frozenset({"not_restricted", "drop"})
# epidural words that name no tissue: what a disc extrusion may be called too ("reactive extradural enhancement")
BARE_EPIDURAL = frozenset({"epidural", "extradural"})
# findings about the canal's contents that a degenerative finding must explain, at its own level
CANAL = frozenset({"epidural", "thecal_sac", "cord", "csf", "canal"})


def _degenerative_only(relevant: list[Finding], stated: list[Finding], rows: dict[int, TargetRow | None]) -> bool:
    """Does the report describe degenerative disease and nothing a tumour grade could apply to?

    Only when a degenerative finding is stated at a level; nothing else points to a lesion (a bone lesion, a
    fracture, abnormal marrow signal, a stated ESCC grade, epidural tissue, tumour or a mass); and every finding
    about the canal's contents (thecal sac, cord, epidural space) with a level lies at a degenerative level."""
    degenerative_levels: set[str] = set()
    for f in stated:
        row = rows[id(f)]
        if f.assertion == "present" and row is not None and row.value == DEGENERATIVE:
            degenerative_levels.update(f.levels)
    if not degenerative_levels:
        return False
    for f in relevant:
        row = rows[id(f)]
        if f.assertion != "present" or row is None:
            continue
        if f.qualifiers.get("degenerative_context"):
            continue  # endplate signal, a band or oedema in a Modic or degenerative clause is the disc's, not a lesion's
        if row.concept in LESION_EVIDENCE or row.concept == "escc_grade":
            return False
        if row.concept == "epidural" and " ".join(f.text.lower().split()) not in BARE_EPIDURAL:
            return False
        if (row.concept == "signal" and any(k.startswith("marrow.") and k != "marrow.t1_gd_fs" and v not in BENIGN_SIGNAL
                                            for k, v in effects(f, row).items())):
            return False
        if row.concept in CANAL and f.levels and not set(f.levels) & degenerative_levels:
            return False
    return True
DEGREE_COLLAPSE = {"minimal": "lt50", "mild": "lt50", "moderate": "lt50", "severe": "severe", "complete": "gt50"}

# Findings at the index level that a benign diagnosis at another level cannot explain away.
AGGRESSIVE = frozenset({"epidural", "paravertebral"})

# Knowledge items the notices apply.
PAIN = "sins.component.pain"
FIFTY = "sins.caveat.exactly_fifty_percent"
GENANT = "fracture.genant_grading"
SINS_DEFINITION = "sins.definition.instability"
ESCC_METHOD = "escc.method.axial_t2"
BENIGN_MIMICS = "ddx.main_mimics"


def _row(f: Finding, rs: RuleSet) -> TargetRow | None:
    from spinemets.reports.extract import row_of

    return row_of(f, rs)


def _evidence(f: Finding) -> Evidence:
    phrase = f.qualifiers.get("phrase")
    if phrase:
        return trusted(Evidence, None, text=phrase["text"], start=phrase["start"], end=phrase["end"],
                       assertion=f.assertion, rule=f.rule)
    return trusted(Evidence, None, text=f.text, start=f.start, end=f.end, assertion=f.assertion, rule=f.rule)


def effects(f: Finding, row: TargetRow) -> dict[str, Any]:
    """What one finding pre-fills, given its assertion and its states."""
    out: dict[str, Any] = {}
    if row.concept in ("epidural", "thecal_sac", "cord", "csf", "canal") and f.qualifiers.get("not_tumour"):
        return out  # cement, a disc fragment, gas, fat, a haematoma or an abscess is not epidural tumour
    if row.concept == "posterior" and f.qualifiers.get("degenerative_context"):
        return out  # a degenerative facet is not posterolateral tumour involvement
    if f.qualifiers.get("cord_context") and any(k.startswith("marrow.") for k in row.sets):
        return out  # cord oedema or root enhancement is not the lesion's marrow signal
    if f.qualifiers.get("not_de_novo"):
        return out  # an old, developmental or degenerative deformity is not SINS's de novo deformity
    if f.qualifiers.get("curve_changed"):
        return out  # "reversal of the normal lordosis" states no normal curve
    if f.qualifiers.get("about_other_parts"):
        return out  # "no osseous lesion elsewhere", "above and below, the canal is clear": not the index level
    states = f.qualifiers.get("states", {}) if row.states or row.negated_states else {}
    if states:  # the state carries the meaning ("the spinal cord is not contacted and CSF is preserved")
        if f.context not in ("present", "negated"):
            return out
        if row.sets_with_states:
            out.update(row.sets if f.context == "present" else row.negated)
    elif f.context == "present":
        out.update(row.sets)
    elif f.context == "negated":
        out.update(row.negated)
    if out.get("sins.posterolateral") == "none" and set(f.qualifiers.get("side", [])) & {"left", "right"}:
        del out["sins.posterolateral"]  # "pedicles intact on the left": the other side is not said to be free
    # "CSF effaced" beside a compressed cord, with no partial degree ("partial", "ventral", "thin") or one side
    # ("on the right"), is no CSF left around the cord, as the complete degree is; otherwise the effacement only
    # deforms the sac ("lytic metastasis with effacement of the CSF" may be a ventral indentation).
    degrees = f.qualifiers.get("degree", [])
    one_side = bool(set(f.qualifiers.get("side", [])) & {"left", "right"})
    complete = "complete" in degrees or (bool(f.qualifiers.get("cord_compressed_beside"))
                                         and "partial" not in degrees and not one_side)
    for state, polarity in states.items():
        if polarity == "present":
            m = row.complete_states.get(state) if complete and state in row.complete_states else row.states.get(state)
        elif polarity == "negated":
            m = row.negated_states.get(state)
        else:
            m = None
        out.update(m or {})
    return out


_FINDINGS_WIN = "the findings section says so"
LUMBAR = "lumbar_location"  # the fracture-differential feature that follows from the index level
DIFFUSE_LOW_T1, OTHER_METS = "diffuse_low_t1_signal", "other_spinal_metastases"


class _Collector:
    """Values per field with the findings behind them."""

    def __init__(self) -> None:
        self.values: dict[str, dict[Any, list[Finding]]] = {}

    def add(self, field: str, value: Any, f: Finding) -> None:
        self.values.setdefault(field, {}).setdefault(value, []).append(f)

    def single(self, field: str) -> tuple[Any, list[Finding], str | None]:
        """(value, evidence, note): None with a note when the report states more than one value."""
        vals = self.values.get(field)
        if not vals:
            return None, [], None
        if len(vals) == 1:
            (value, fs), = vals.items()
            return value, fs, None
        in_findings = {v: [f for f in fs if f.section == "findings"] for v, fs in vals.items()}
        in_findings = {v: fs for v, fs in in_findings.items() if fs}
        if len(in_findings) == 1:  # the findings section is the detailed account; the impression summarises it
            (value, fs), = in_findings.items()
            others = "; ".join(f'"{fs2[0].text}"' for v, fs2 in vals.items() if v != value)
            return value, fs, f"{_FINDINGS_WIN}; the impression says otherwise ({others})"
        said = "; ".join(f'{_show(v)} ("{fs[0].text}")' for v, fs in vals.items())
        return None, [f for fs in vals.values() for f in fs], f"the report states more than one value: {said}"


def _one_block_with(index: str | None, levels: list[str]) -> bool:
    """Whether *levels* are the index level and the level next to it ("destruction of the C2 and C3 bodies" with C2
    the index): one lesion over two adjacent levels, not lesions elsewhere in the spine (a longer run, "diffuse
    infiltration from T10 to L5", is disease at other levels)."""
    if index is None or index not in levels or index not in INDEX or not all(lv in INDEX for lv in levels):
        return False
    at = sorted({INDEX[lv] for lv in levels})
    return len(at) == 2 and at[1] - at[0] == 1


def _show(v: Any) -> str:
    return ("yes" if v else "no") if isinstance(v, bool) else str(v)


def _value(value: Any, fs: Iterable[Finding], note: str | None = None) -> Prefilled:
    seen, ev, sections = set(), [], set()
    for f in fs:
        sections.add(f.section)
        if (f.start, f.end) not in seen:
            seen.add((f.start, f.end))
            ev.append(_evidence(f))
    confidence = None
    if value is not None and ev:
        disagreed = bool(note) and note.startswith(_FINDINGS_WIN)  # type: ignore[union-attr]
        confidence = "high" if "findings" in sections and not disagreed else "moderate"
    return trusted(Prefilled, None, value=value, evidence=ev, confidence=confidence, note=note)


def prefill(
    findings: list[Finding], index: str | None, rs: RuleSet, kb: KnowledgeBase, cite: Citer, pain: str | None = None,
) -> tuple[Prefill, list[Component], list[str], list[Notice]]:
    """The pre-filled inputs for the index level, the result's components, missing fields and notices."""
    from spinemets.scores.sins import normalise

    notices: list[Notice] = []
    pain_value = None
    if pain is not None and str(pain).strip():
        try:
            pain_value = normalise("pain", pain)
        except ValueError as exc:
            raise InvalidInputError("pain", str(exc)) from None

    relevant = [f for f in findings if f.assertion in ("present", "negated")]
    rows = {id(f): _row(f, rs) for f in findings}
    def neoplastic_of(f: Finding) -> bool | None:
        row = rows[id(f)]
        return None if row is None else rs.neoplastic(row)

    anchor = index is not None or any(
        f.assertion == "present" and (row := rows[id(f)]) is not None and row.concept in ANCHORS
        and not f.qualifiers.get("degenerative_context") for f in relevant)  # (a Modic band, degenerative uptake)
    suspected = [f for f in findings if f.context in ("present", "uncertain")]
    stated = [f for f in findings if f.context == "present"]
    # A benign diagnosis the report states outright outweighs a neoplasm it only raises as a possibility
    # ("insufficiency fracture; neoplastic infiltration less likely"): the report's stated diagnoses are benign, so
    # nothing is pre-filled (annotation guide: SINS and ESCC only for a stated neoplastic or an unexplained lesion).
    # A benign diagnosis at another level does not explain an aggressive lesion at the index level (epidural or
    # paravertebral tumour, destruction, a neoplasm raised at that level): "osteoporotic fracture of L1; destructive
    # lytic lesion at T9 compressing the cord, metastasis in the differential" scores T9. Otherwise any benign
    # diagnosis still counts: its levels may be read incompletely ("wedge fractures, moderate T12 and mild L1",
    # "a lytic lesion in T11: an atypical haemangioma, as seen at T12").
    index_lesion = index is not None and any(
        f.context == "present" and index in f.levels and (row := rows[id(f)]) is not None
        and (row.concept in AGGRESSIVE or row.concept == "lesion" and row.value == "destructive")
        or f.context in ("present", "uncertain") and index in f.levels and (row := rows[id(f)]) is not None
        and row.concept == "diagnosis" and rs.neoplastic(row) is True
        for f in findings)

    def about_index(f: Finding) -> bool:
        return not index_lesion or not f.levels or index in f.levels

    benign_stated = any(neoplastic_of(f) is False and about_index(f) for f in stated)
    only_raised = benign_stated and not any(neoplastic_of(f) is True for f in stated)
    # a fracture called pathological beside a stated infection of the spine is the infection's ("vertebral
    # osteomyelitis with pathological fractures"): it is no evidence of a neoplasm (terms group `infections`)
    infections = frozenset(rs.terms.groups.get("infections", ()))
    infected = [set(f.levels) for f in stated if f.concept == "diagnosis" and f.value in infections]

    def infection_at(f: Finding) -> bool:  # a stated infection at the finding's levels (or one of them names none)
        return any(not lv or not f.levels or lv & set(f.levels) for lv in infected)

    neoplastic = any(neoplastic_of(f) is True and not (f.concept == "collapse" and infection_at(f))
                     for f in (stated if benign_stated else suspected))
    benign = any(neoplastic_of(f) is False and about_index(f) for f in suspected)
    # Degenerative disease alone (a disc extrusion narrowing the thecal sac, facet arthropathy) is not a lesion to
    # score: see _degenerative_only for when the epidural and thecal-sac words are the disc's.
    degenerative_only = not neoplastic and _degenerative_only(relevant, stated, rows)

    pre = Prefill(level=index)
    col = _Collector()
    for f in relevant:
        row = rows[id(f)]
        if row is None:
            continue
        for fld, value in effects(f, row).items():
            col.add(fld, value, f)

    # --- applicability --------------------------------------------------------------------------------
    if not anchor:
        for inst in ("sins", "escc", "fracture", "marrow"):
            pre.applies[inst] = False
            pre.why_not[inst] = "the report describes no lesion or fracture to pre-fill for"
    else:
        oncologic = (neoplastic or not benign) and not degenerative_only
        for inst in ("sins", "escc"):
            pre.applies[inst] = oncologic
            if degenerative_only:
                pre.why_not[inst] = ("the report describes degenerative disease and no bone lesion, fracture or abnormal "
                                     f"marrow signal; {inst.upper()} grades spinal neoplasms")
            elif not oncologic and only_raised and any(neoplastic_of(f) is True for f in suspected):
                pre.why_not[inst] = ("the report states a benign diagnosis and raises a neoplasm only as a possibility; "
                                     f"{inst.upper()} grades spinal neoplasms: give the findings if a neoplasm is "
                                     "confirmed")
            elif not oncologic:
                pre.why_not[inst] = ("the report's diagnoses are benign (no neoplastic lesion stated or suspected); "
                                     f"{inst.upper()} grades spinal neoplasms")
        fractured = any(f.assertion == "present" and (row := rows[id(f)]) is not None and (
            row.fracture or row.concept == "height" and (f.qualifiers.get("percent") or f.qualifiers.get("degree")))
            for f in relevant)
        pre.applies["fracture"] = fractured
        if not fractured:
            pre.why_not["fracture"] = "no fracture or collapse is stated at the index level"
        pre.applies["marrow"] = True

    components: list[Component] = []
    missing: list[str] = []

    def component(name: str, p: Prefilled, fs: list[Finding]) -> None:
        kb_items, sources = [], []
        for f in fs:
            for k in f.kb_items:
                if k not in kb_items:
                    kb_items.append(k)
            for s in f.sources:
                if s not in sources:
                    sources.append(s)
        words = "; ".join(f'"{" ".join(e.text.split())}"' for e in p.evidence[:3])
        note = f"from {words}" if words else None
        why = p.note
        if p.confidence == "moderate":
            why = f"moderate confidence: {p.note or 'the impression only'}"
        if why:
            note = f"{note} - {why}" if note else why
        components.append(trusted(Component, None, name=name, value=_show(p.value) if p.value is not None else None,
                                  note=note, kb_items=kb_items, sources=sources, refs=cite.cite_sources(sources)))

    # --- SINS -----------------------------------------------------------------------------------------------
    if pre.applies.get("sins"):
        pre.sins["level"] = Prefilled(value=index, evidence=[], note=None if index else "no level stated")
        pre.sins["pain"] = Prefilled(value=pain_value, note="given" if pain_value else "clinical: not in the report")
        lesion = _lesion(col)
        collapse = _collapse(relevant, rows, col, notices, cite)
        alignment = _alignment(col)
        doubted_parts = [f for f in findings if f.assertion == "uncertain" and (row := rows[id(f)]) is not None
                         and row.concept == "posterior" and row.posterolateral]
        posterolateral = _posterolateral(relevant, rows, col, doubted_parts)
        for name, (p, fs) in (("lesion", lesion), ("collapse", collapse), ("alignment", alignment),
                              ("posterolateral", posterolateral)):
            pre.sins[name] = p
        for name in ("level", "pain", *SINS_FIELDS):
            p = pre.sins[name]
            fs = {"lesion": lesion, "collapse": collapse, "alignment": alignment, "posterolateral": posterolateral}.get(name, (p, []))[1]
            if p.value is None:
                missing.append(f"sins.{name}")
            if name == "level":
                if p.value is not None:
                    components.append(Component(name="sins.level", value=str(p.value), note="index level"))
                continue
            if name == "pain":
                if p.value is not None:
                    components.append(Component(name="sins.pain", value=str(p.value), note="given"))
                continue
            if p.value is not None or p.note:
                component(f"sins.{name}", p, fs)
        if pain_value is None:
            notices.append(cite.notice("pain", "Pain is a clinical SINS component: it is never read from the report; "
                                       "give it to complete the score.", kb_items=[PAIN]))
        pre.inputs["sins"] = {k: v.value for k, v in pre.sins.items() if v.value is not None}

    # --- ESCC -----------------------------------------------------------------------------------------------
    if pre.applies.get("escc"):
        from spinemets.scores.escc import FINDINGS, parse_grade
        from spinemets.scores.escc import grades as escc_grades

        grades = _Collector()
        for f in relevant:
            row = rows[id(f)]
            if row is not None and row.concept == "escc_grade" and f.assertion == "present" and "grade_range" in f.qualifiers:
                notices.append(cite.notice("escc_grade_unclear", f'The report gives more than one ESCC grade '
                                           f'("{f.qualifiers["grade_range"]}"); none was used.', kb_items=[ESCC_METHOD]))
            if row is not None and row.concept == "escc_grade" and f.assertion == "present" and "grade" in f.qualifiers:
                try:
                    grades.add("grade", parse_grade(f.qualifiers["grade"]), f)
                except ValueError:
                    grade = str(f.qualifiers["grade"])
                    stated = " ".join(f.text.split())  # the report's words, with the grade once
                    if not re.search(rf"(?<![\w.]){re.escape(grade)}(?![\w.])", stated, re.IGNORECASE):
                        stated = f"{stated} {grade}"
                    notices.append(cite.notice("escc_grade_unclear", f'The stated ESCC grade "{stated}" is incomplete '
                                               "(1a, 1b or 1c?); it was not used.", kb_items=[ESCC_METHOD]))
        for name in ("grade", *FINDINGS):
            source = grades if name == "grade" else col
            value, fs, note = source.single(name if name == "grade" else f"escc.{name}")
            p = _value(value, fs, note)
            pre.escc[name] = p
            if value is not None or note:
                component(f"escc.{name}", p, fs)
        data = {k: v.value for k, v in pre.escc.items() if v.value is not None}
        pre.inputs["escc"] = data
        if data:
            try:
                pre.escc_grade, pre.escc_possible_grades = escc_grades(data, kb)
            except ContradictoryInputError as exc:
                notices.append(cite.notice("escc_contradiction", f"The ESCC findings read from the report do not fit "
                                           f"together ({exc.message}); check them before grading.", kb_items=[ESCC_METHOD]))
            except SpinemetsError as exc:  # pragma: no cover - the values come from the validated vocabulary
                notices.append(cite.notice("escc_invalid", str(exc)))
        else:
            missing.append("escc.epidural_disease")

    # --- fracture differential ------------------------------------------------------------------------------
    if pre.applies.get("fracture"):
        from spinemets.interpret.fracture import TABLE

        derived = _Collector()
        plural = rs.group_pattern("plural_lesion")
        for f in findings:
            if f.context != "present" or not any(lv != index for lv in f.levels):
                continue
            if _one_block_with(index, f.levels) and not (plural is not None and plural.search(f.text)):
                continue  # one lesion over the index and the next level; "C3 and C4 metastases" are two
            row = rows[id(f)]
            if row is None:
                continue
            # a lesion of a stated type elsewhere (not bare destruction, which infection causes too)
            if row.concept == "lesion" and row.value != "destructive" or neoplastic_of(f) is True and row.concept in (
                    "diagnosis", "lesion"):
                derived.add("fracture.other_spinal_metastases", "present", f)
            if row.fracture and f.assertion == "other_level":
                derived.add("fracture.multiple_compression_fractures", "present", f)
        # what the index level's own findings say in other words: low T1 signal given the whole body is diffuse low
        # T1 signal (normal marrow kept in part of the body is not read as its absence: an inference, not a statement)
        implied = _Collector()
        for f in relevant:
            if f.context == "present" and (not f.levels or index in f.levels) and f.qualifiers.get("whole_body"):
                implied.add(f"fracture.{DIFFUSE_LOW_T1}", "present", f)
            if f.qualifiers.get("elsewhere") and f.context in ("present", "negated"):  # "no lesion elsewhere"
                implied.add(f"fracture.{OTHER_METS}", "present" if f.context == "present" else "absent", f)
        for row in kb.table(TABLE).rows:
            fld = f"fracture.{row.id}"
            value, fs, note = col.single(fld)
            if value is None and note is None and fld in implied.values:
                value, fs, inote = implied.single(fld)
                if value is not None:
                    note = ("low T1 signal stated for the whole body" if row.id == DIFFUSE_LOW_T1
                            else "a lesion stated (or denied) elsewhere in the spine")
                elif inote is not None:
                    note = inote
            dvalue, dfs, _ = derived.single(fld)
            if row.id == LUMBAR and value is None and note is None and index is not None:
                # where the fracture is: the index level the report gives (lumbar L1-L5, or not)
                at = [f for f in findings if index in f.levels and f.context == "present"][:1]
                value, fs, note = ("present" if index.startswith("L") else "absent"), at, f"the fracture is at {index}"
            elif value is None and note is None and dvalue is not None:
                value, fs, note = dvalue, dfs, "from findings at other levels"
            elif dvalue is not None and value is not None and value != dvalue:
                value, fs, note = None, fs + dfs, "stated absent, but findings at other levels suggest present"
            if value is None and note is None:
                continue
            p = _value(value, fs, note)
            pre.fracture[row.id] = p
            component(fld, p, fs)
        pre.inputs["fracture"] = {k: v.value for k, v in pre.fracture.items() if v.value is not None}

    # --- marrow signal --------------------------------------------------------------------------------------
    if pre.applies.get("marrow"):
        from spinemets.interpret.marrow import DISC, SEQUENCES

        marrow = _Collector()
        for fld, vals in col.values.items():
            if not fld.startswith("marrow."):
                continue
            for value, fs in vals.items():
                for f in fs:
                    if not f.qualifiers.get("not_marrow"):
                        marrow.add(fld, value, f)
        for name in (*SEQUENCES, DISC):
            value, fs, note = marrow.single(f"marrow.{name}")
            if value is None and note is None:
                continue
            p = _value(value, fs, note)
            pre.marrow[name] = p
            component(f"marrow.{name}", p, fs)
        pre.inputs["marrow"] = {k: v.value for k, v in pre.marrow.items() if v.value is not None}

    for inst, why in pre.why_not.items():
        if inst in ("sins", "escc") and pre.applies.get("marrow"):
            notices.append(cite.notice(f"{inst}_not_prefilled", f"{inst.upper()} not pre-filled: {why}.",
                                       kb_items=[SINS_DEFINITION if inst == "sins" else ESCC_METHOD, BENIGN_MIMICS]))
    if components:
        notices.insert(0, cite.notice("confirm", "Every pre-filled value comes from the report's wording: confirm or "
                                      "edit each one before scoring; what the report does not state stays unknown."))
    return pre, components, missing, notices


# --- SINS components ---------------------------------------------------------------------------------------


def _lesion(col: _Collector) -> tuple[Prefilled, list[Finding]]:
    vals = col.values.get("sins.lesion", {})
    fs = [f for v in vals.values() for f in v]
    if not vals:
        return Prefilled(), []
    kinds = set(vals)
    if "mixed" in kinds or {"lytic", "blastic"} <= kinds:
        note = "lytic and blastic both stated" if {"lytic", "blastic"} <= kinds and "mixed" not in kinds else None
        return _value("mixed", fs, note), fs
    (value,) = kinds
    return _value(value, fs), fs


def _pct_category(p: dict[str, Any]) -> str | None:
    from spinemets.scores.sins import collapse_threshold_percent

    cut = collapse_threshold_percent()
    lo, hi, cmp = p["low"], p["high"], p.get("comparator")
    if cmp == "above":
        return "gt50" if lo >= cut else None
    if cmp == "below":
        return "lt50" if hi <= cut else None
    if hi < cut:
        return "lt50"
    if lo > cut:
        return "gt50"
    if lo == hi == cut:
        return "fifty"
    return None


def _collapse(relevant: list[Finding], rows: dict[int, TargetRow | None], col: _Collector, notices: list[Notice],
              cite: Citer) -> tuple[Prefilled, list[Finding]]:
    cats: dict[str, list[Finding]] = {}
    undetermined: list[Finding] = []
    present: list[Finding] = []
    for f in relevant:
        row = rows[id(f)]
        if row is None or row.concept not in ("collapse", "height") or f.assertion != "present":
            continue
        figures = f.qualifiers.get("percent", [])
        if figures and not row.collapse and all(p["high"] == 0 for p in figures):
            col.add("sins.collapse", "no_collapse", f)  # "height loss 0%": no collapse
            continue
        found = set()
        if row.collapse:
            found.add(row.collapse)
        for p in f.qualifiers.get("percent", []):
            found.add(_pct_category(p))
        for d in f.qualifiers.get("degree", []):
            found.add(DEGREE_COLLAPSE.get(d))
        found.discard(None)
        if row.concept == "height" and not found:
            continue  # "vertebral body height" alone says nothing
        present.append(f)
        if not found:
            undetermined.append(f)
        for c in found:
            cats.setdefault(c, []).append(f)
    if present:
        if "gt50" in cats and "lt50" in cats:
            return _value(None, cats["gt50"] + cats["lt50"], "the report gives both more and less than 50%"), cats["gt50"] + cats["lt50"]
        for c in ("gt50", "lt50"):
            if c in cats:
                return _value(c, cats[c]), cats[c]
        if "fifty" in cats:
            notices.append(cite.notice("collapse_fifty", "A collapse of 50% fits neither SINS category (more or less "
                                       "than 50%); it was left for you to decide.", kb_items=[FIFTY]))
            return _value(None, cats["fifty"], "50% collapse: neither category"), cats["fifty"]
        if "severe" in cats:
            notices.append(cite.notice("collapse_severe", "\"Severe\" height loss (Genant grade 3, over 40%) does not "
                                       "decide between less and more than 50% collapse; it was left for you to decide.",
                                       kb_items=[GENANT]))
            return _value(None, cats["severe"], "severe: over 40%, which decides neither category"), cats["severe"]
        return _value(None, undetermined, "collapse stated without its degree"), undetermined
    value, fs, note = col.single("sins.collapse")
    if value is None and not fs:
        # no collapse stated either way, but the body is said to be free of the lesion ("the C2 body is uninvolved"):
        # no collapse from it, at moderate confidence
        free = [f for f in relevant if f.context == "negated" and (row := rows[id(f)]) is not None
                and row.concept == "extent" and row.value == "uninvolved" and not f.qualifiers.get("about_other_parts")]
        if free:
            p = _value("none", free, "the vertebral body is stated free of the lesion; no collapse is stated")
            p.confidence = "moderate"
            return p, free
    if value != "no_collapse":
        return _value(value, fs, note), fs
    extent = _Collector()
    weak: list[tuple[str, Finding]] = []  # a bare size word ("small"): it may describe anything nearby
    for f in relevant:
        row = rows[id(f)]
        # a phrase that itself states the body is free ("no osseous involvement") reads as denied: it still counts
        if row is None or not (f.context == "present" or f.context == "negated" and row.polarity == "negative"
                               and row.concept == "extent") or f.qualifiers.get("about_other_parts"):
            continue
        if row.body_extent and f.text.strip().lower() in WEAK_EXTENT:
            if not f.qualifiers.get("sizes_other"):  # "small sheets of soft tissue" sizes something else
                weak.append((row.body_extent, f))
        elif row.body_extent:
            extent.add("extent", row.body_extent, f)
        for p in f.qualifiers.get("percent", []) if row.concept == "extent" else []:
            share = _pct_category(p)  # "replaces about 30% of the vertebral body"
            if share in ("gt50", "lt50"):
                extent.add("extent", share, f)
    set_aside = None
    if not extent.values.get("extent"):  # a stated share of the body outweighs a bare size word
        for value, f in weak:
            extent.add("extent", value, f)
    elif weak:
        words = ", ".join(dict.fromkeys(f'"{f.text.strip()}"' for _, f in weak))
        set_aside = f"{words} not used: the report states how much of the body is involved"
    ext, efs, enote = extent.single("extent")
    if ext == "gt50":
        return _value("involved_no_collapse", fs + efs, set_aside), fs + efs
    if ext == "lt50":
        return _value("none", fs + efs, set_aside), fs + efs
    return _value(None, fs + efs, "no collapse stated, but not how much of the body is involved" if not enote else enote), fs


def _alignment(col: _Collector) -> tuple[Prefilled, list[Finding]]:
    vals = col.values.get("sins.alignment", {})
    for value in ("subluxation", "deformity", "normal"):
        if value in vals:
            note = "normal alignment also stated" if value != "normal" and "normal" in vals else None
            return _value(value, vals[value], note), vals[value]
    if "no_subluxation" in vals and "no_deformity" in vals:  # "no listhesis and no focal kyphosis"
        fs = vals["no_subluxation"] + vals["no_deformity"]
        return _value("normal", fs, "no subluxation and no deformity stated"), fs
    return Prefilled(), []


def _posterolateral(relevant: list[Finding], rows: dict[int, TargetRow | None], col: _Collector,
                    doubted: Sequence[Finding] = ()) -> tuple[Prefilled, list[Finding]]:
    involved = [f for f in relevant if f.assertion == "present" and (row := rows[id(f)]) is not None
                and row.concept == "posterior" and row.posterolateral and row.polarity == "positive"
                and not f.qualifiers.get("degenerative_context")]
    if involved:
        sides = {s for f in involved for s in f.qualifiers.get("side", [])}
        if "bilateral" in sides or {"left", "right"} <= sides:
            return _value("bilateral", involved), involved
        if sides:
            return _value("unilateral", involved), involved
        return _value(None, involved, "posterolateral involvement stated without its side"), involved
    vals = col.values.get("sins.posterolateral", {})
    stated = [v for v in ("bilateral", "unilateral") if v in vals]  # the component written out in a template
    if len(stated) == 1:
        return _value(stated[0], vals[stated[0]]), vals[stated[0]]
    if "none" in vals:
        pedicles_only = all(f.rule.endswith(".posterior-pedicles-spared") for f in vals["none"])
        if pedicles_only and doubted:
            return Prefilled(), []  # "pedicles intact; possible early involvement of the left facet"
        if pedicles_only:
            # only the pedicles are said to be free: moderate confidence, and the reader is told why
            p = _value("none", vals["none"], _PEDICLES_ONLY)
            p.confidence = "moderate"
            return p, vals["none"]
        return _value("none", vals["none"]), vals["none"]
    return Prefilled(), []


_PEDICLES_ONLY = "read from both pedicles stated free; the facets and costovertebral joints are not named"


def lesions_case(result: Any) -> dict[str, Any] | None:
    """A case document with one lesion per level the report pre-fills SINS or ESCC for (read with
    ``every_level=True``), for the reader to confirm (and to join levels into one lesion where the report describes
    one lesion across them: the reader does not guess it); a level whose lesion is benign, or where nothing applies,
    is left out.  None when fewer
    than two levels are pre-filled (the single-lesion forms serve those)."""
    by_level: dict[str, Any] = {lp.level: lp.prefill for lp in result.level_prefills}
    if result.index_level is not None:
        by_level[result.index_level] = result.prefill
    rows: list[tuple[str, dict[str, Any]]] = []
    for level in sorted(by_level, key=INDEX.__getitem__):
        pre = by_level[level]
        if not (pre.applies.get("sins") or pre.applies.get("escc")):
            continue
        values = {name: {k: v for k, v in (pre.inputs.get(name) or {}).items() if k != "level"}
                  for name in ("sins", "escc") if pre.applies.get(name)}
        rows.append((level, values))
    if len(rows) < 2:
        return None
    return {"lesions": [_case_lesion(level, values) for level, values in rows]}


def _case_lesion(level: str, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": level}
    for name, inputs in values.items():
        if inputs:
            out[name] = inputs
    return out
