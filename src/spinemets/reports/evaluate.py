"""``spinemets extract-eval``: per-field precision, recall and F1 of the extractor on an annotated report set.

A set is a folder of ``.txt`` reports and a ``<set>.gold.yaml`` beside it (``tests/data/reports/dev`` and
``dev.gold.yaml`` by default; ``--set holdout`` for the reports never tuned on).  The annotation rules are in
``tests/data/reports/README.md``.  Counting, per field and over all reports:

* a single value (index level, a SINS component, the ESCC grade) is a true positive when predicted and equal
  to the gold value, a false positive when predicted and different from it (or when the gold says unknown),
  a false negative when the gold has a value the prediction does not give;
* a set (levels, diagnoses) or a mapping (ESCC findings, fracture features, marrow signal) counts its
  elements (level, diagnosis, field=value) the same way.

A prediction where the gold says unknown is an error: what a report does not state must stay unknown.

A set whose annotators recorded only some fracture features (their gold file's header says which) declares them
in an optional ``<set>.scope.yaml`` (``fracture_features: [...]``, with the header line it rests on); the
fracture field and negation then count only those rows, so a feature the annotators were never asked to read is
neither a false positive nor a hit.  The report names the scope.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from spinemets.errors import InvalidInputError

DATA_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "reports"
DIAGNOSES = ("metastasis", "myeloma", "osteoporotic_fracture", "haemangioma", "bone_island", "discitis")
SCALAR = ("index_level", "sins.lesion", "sins.collapse", "sins.alignment", "sins.posterolateral", "escc_grade")
COLLECTIONS = ("levels", "diagnoses", "escc", "fracture", "marrow")
FIELDS = ("index_level", "levels", "diagnoses", "sins.lesion", "sins.collapse", "sins.alignment", "sins.posterolateral",
          "escc", "escc_grade", "fracture", "marrow")
GOLD_KEYS = {"index_level", "levels", "diagnoses", "sins", "escc", "escc_grade", "fracture", "marrow"}


class FieldScore(BaseModel):
    field: str
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": _r(self.precision),
                "recall": _r(self.recall), "f1": _r(self.f1)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


class Miss(BaseModel):
    report: str
    field: str
    gold: Any = None
    predicted: Any = None


class PrefillAccuracy(BaseModel):
    """Pre-filled SINS components and ESCC findings: how many, and how many disagree with the gold (a value where
    the gold says unknown counts as wrong), overall and per confidence of the reading."""

    prefilled: int = 0
    wrong: int = 0
    by_confidence: dict[str, list[int]] = Field(default_factory=dict, description="confidence -> [prefilled, wrong]")
    wrong_items: list[str] = Field(default_factory=list,
                                   description="each wrong pre-fill: report, component, gold / pre-filled, phrase")
    by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="wrong pre-fills by kind: 'contradicts' (the gold gives another value), 'not_scored' (the gold "
                    "scores no SINS or no ESCC for the report: a benign or normal study), 'unstated' (the gold scores "
                    "the instrument but leaves this component unknown)")

    @property
    def wrong_rate(self) -> float | None:
        return self.wrong / self.prefilled if self.prefilled else None

    def add(self, confidence: str | None, wrong: bool, item: str | None = None, kind: str | None = None) -> None:
        self.prefilled += 1
        self.wrong += wrong
        if wrong and item is not None:
            self.wrong_items.append(item)
        if wrong and kind is not None:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        tally = self.by_confidence.setdefault(confidence or "unstated", [0, 0])
        tally[0] += 1
        tally[1] += wrong


class EvalReport(BaseModel):
    set: str
    reports: int
    seconds: float
    fields: list[FieldScore]
    overall: FieldScore
    fracture_scope: list[str] | None = Field(
        default=None, description="the fracture features this set's annotators recorded; None: every feature")
    unscored: int = Field(default=0, description="fracture features predicted outside the set's scope (not scored)")
    negation: FieldScore = Field(default_factory=lambda: FieldScore(field="negation"),
                                 description="ESCC findings stated false and fracture features stated absent")
    prefill_accuracy: PrefillAccuracy = Field(default_factory=PrefillAccuracy)
    misses: list[Miss] = Field(default_factory=list)

    def score(self, field: str) -> FieldScore:
        return next(f for f in self.fields if f.field == field)

    def to_text(self, verbose: bool = False) -> str:
        lines = [f"extract-eval: {self.set} set, {self.reports} reports ({self.seconds:.1f} s)", "",
                 f"  {'field':<22}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F1':>7}"]
        for f in [*self.fields, self.overall]:
            if f is self.overall:
                lines.append("  " + "-" * 63)
            lines.append(f"  {f.field:<22}{f.tp:>5}{f.fp:>5}{f.fn:>5}{_pct(f.precision):>11}{_pct(f.recall):>8}{_pct(f.f1):>7}")
        n = self.negation
        lines.append(f"  {'negation':<22}{n.tp:>5}{n.fp:>5}{n.fn:>5}{_pct(n.precision):>11}{_pct(n.recall):>8}{_pct(n.f1):>7}"
                     "   (ESCC findings false, fracture features absent)")
        if self.fracture_scope is not None:
            lines.append(f"  fracture features scored: the {len(self.fracture_scope)} this set's annotators recorded "
                         f"({', '.join(self.fracture_scope)}); {self.unscored} predicted values of other "
                         "features were not scored")
        a = self.prefill_accuracy
        lines += ["", f"  wrong pre-fills: {a.wrong} of {a.prefilled} pre-filled SINS components and ESCC findings "
                      f"({_pct(a.wrong_rate)})"]
        for conf, (n_pre, n_wrong) in sorted(a.by_confidence.items()):
            lines.append(f"    {conf} confidence: {n_wrong} of {n_pre} wrong ({_pct(n_wrong / n_pre if n_pre else None)})")
        if a.wrong:
            k = a.by_kind
            lines.append(f"    of which {k.get('contradicts', 0)} give another value than the gold, "
                         f"{k.get('not_scored', 0)} fill an instrument the gold gives nothing for in that report, "
                         f"{k.get('unstated', 0)} a component the gold leaves unknown")
        if verbose and a.wrong_items:
            lines += ["", "Wrong pre-fills (report, component: gold / pre-filled, phrase read):"]
            lines += [f"  {item}" for item in a.wrong_items]
        if verbose and self.misses:
            lines += ["", "Disagreements (report, field: gold / predicted):"]
            for m in self.misses:
                lines.append(f"  {m.report}  {m.field}: {m.gold!r} / {m.predicted!r}")
        return "\n".join(lines)

    def as_dict(self, verbose: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"set": self.set, "reports": self.reports, "seconds": round(self.seconds, 2),
                               "fields": [f.as_dict() for f in self.fields], "overall": self.overall.as_dict(),
                               "negation": self.negation.as_dict(), "fracture_scope": self.fracture_scope,
                               "unscored": self.unscored,
                               "wrong_prefill": {"prefilled": self.prefill_accuracy.prefilled,
                                                 "wrong": self.prefill_accuracy.wrong,
                                                 "rate": _r(self.prefill_accuracy.wrong_rate),
                                                 "by_confidence": self.prefill_accuracy.by_confidence,
                                                 "by_kind": self.prefill_accuracy.by_kind}}
        if verbose:
            out["misses"] = [m.model_dump() for m in self.misses]
        return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def load_scope(name: str, data_dir: str | Path | None = None) -> list[str] | None:
    """The fracture features a set's annotators recorded (``<set>.scope.yaml``), or None for every feature."""
    from spinemets.knowledge.loader import load_kb

    path = (Path(data_dir) if data_dir else DATA_DIR) / f"{name}.scope.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rows = data.get("fracture_features") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(data.get("stated_in"), str):
        raise InvalidInputError("set", f"{path.name}: expected fracture_features (a list of rows) and stated_in "
                                       "(where the set's annotators said so)")
    known = {r.id for r in load_kb().table("fracture_features").rows}
    unknown = [r for r in rows if r not in known]
    if unknown:
        raise InvalidInputError("set", f"{path.name}: {unknown[0]!r} is not a fracture feature")
    # the scope rests on what the annotators wrote: every row must be named in the gold file's header comments
    gold = path.with_name(f"{name}.gold.yaml")
    header = []
    for line in gold.read_text(encoding="utf-8").splitlines() if gold.is_file() else []:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    named = set(re.findall(r"[a-z0-9_]+", "\n".join(header)))
    unnamed = [r for r in rows if r not in named]
    if unnamed:
        raise InvalidInputError("set", f"{path.name}: {unnamed[0]!r} is not named in the header of {gold.name}; a "
                                       "scope lists only the rows the annotators said they recorded")
    return [str(r) for r in rows]


def load_set(name: str = "dev", data_dir: str | Path | None = None) -> tuple[Path, dict[str, dict[str, Any]]]:
    """(reports folder, gold annotations) of a set; errors name the set."""
    root = Path(data_dir) if data_dir else DATA_DIR
    gold_path = root / f"{name}.gold.yaml"
    folder = root / name
    if not gold_path.is_file() or not folder.is_dir():
        raise InvalidInputError("set", f"no annotated set {name!r} in {root} (expected {name}.gold.yaml and {name}/)")
    gold = yaml.safe_load(gold_path.read_text(encoding="utf-8")) or {}
    if not isinstance(gold, dict):
        raise InvalidInputError("set", f"{gold_path.name}: expected a mapping of report name to annotations")
    for rid, g in gold.items():
        unknown = set(g or {}) - GOLD_KEYS
        if unknown:
            raise InvalidInputError("set", f"{gold_path.name}: {rid}: unknown key {sorted(unknown)[0]!r}")
        if not (folder / f"{rid}.txt").is_file():
            raise InvalidInputError("set", f"{gold_path.name}: {rid}: no file {rid}.txt in {folder}")
        problem = _gold_value_problem(g or {})
        if problem:
            raise InvalidInputError("set", f"{gold_path.name}: {rid}: {problem}")
    return folder, gold


def _gold_value_problem(g: dict[str, Any]) -> str | None:
    """An annotation value outside the extractor's vocabulary (it would count as a silent disagreement)."""
    from spinemets.interpret.marrow import DISC, VOCABULARY
    from spinemets.knowledge.loader import load_kb
    from spinemets.scores.escc import GRADES, EsccInput
    from spinemets.scores.sins import ENUMS

    for name, value in (g.get("sins") or {}).items():
        if name not in ENUMS or name == "pain":
            return f"sins: unknown component {name!r}"
        if value not in {m.value for m in ENUMS[name]}:
            return f"sins.{name}: {value!r} is not one of {', '.join(m.value for m in ENUMS[name])}"
    findings = set(EsccInput.model_fields) - {"grade"}
    for name, value in (g.get("escc") or {}).items():
        if name not in findings or not isinstance(value, bool):
            return f"escc: {name}: {value!r} (expected one of {', '.join(sorted(findings))} with true or false)"
    if g.get("escc_grade") is not None and str(g["escc_grade"]) not in GRADES:
        return f"escc_grade: {g['escc_grade']!r} is not one of {', '.join(GRADES)}"
    for name, value in (g.get("marrow") or {}).items():
        if name == DISC:
            if not isinstance(value, bool):
                return f"marrow.{DISC}: {value!r} (expected true or false)"
        elif name not in VOCABULARY:
            return f"marrow: unknown sequence {name!r} (one of {', '.join(VOCABULARY)})"
        elif value not in VOCABULARY[name]:
            return f"marrow.{name}: {value!r} is not one of {', '.join(VOCABULARY[name])}"
    features = {row.id for row in load_kb().table("fracture_features").rows}
    for name, value in (g.get("fracture") or {}).items():
        if name not in features or value not in ("present", "absent"):
            return f"fracture: {name}: {value!r} (expected a fracture feature with present or absent)"
    for d in g.get("diagnoses") or []:
        if d not in DIAGNOSES:
            return f"diagnoses: {d!r} is not one of {', '.join(DIAGNOSES)}"
    return None


def predicted_fields(result: Any) -> dict[str, Any]:
    """The evaluated fields of an ExtractResult."""
    pre = result.prefill
    sins = {k: v.value for k, v in pre.sins.items()}
    return {
        "index_level": result.index_level,
        "levels": set(result.levels),
        "diagnoses": {d for d in result.diagnoses if d in DIAGNOSES},
        "sins.lesion": sins.get("lesion"),
        "sins.collapse": sins.get("collapse"),
        "sins.alignment": sins.get("alignment"),
        "sins.posterolateral": sins.get("posterolateral"),
        "escc": {f"{k}={_b(v.value)}" for k, v in pre.escc.items() if k != "grade" and v.value is not None},
        "escc_grade": pre.escc_grade,
        "fracture": {f"{k}={v.value}" for k, v in pre.fracture.items() if v.value is not None},
        "marrow": {f"{k}={_b(v.value)}" for k, v in pre.marrow.items() if v.value is not None},
    }


def gold_fields(g: dict[str, Any]) -> dict[str, Any]:
    g = g or {}
    sins = g.get("sins") or {}
    grade = g.get("escc_grade")
    return {
        "index_level": g.get("index_level"),
        "levels": set(g.get("levels") or []),
        "diagnoses": set(g.get("diagnoses") or []),
        "sins.lesion": sins.get("lesion"),
        "sins.collapse": sins.get("collapse"),
        "sins.alignment": sins.get("alignment"),
        "sins.posterolateral": sins.get("posterolateral"),
        "escc": {f"{k}={_b(v)}" for k, v in (g.get("escc") or {}).items()},
        "escc_grade": None if grade is None else str(grade),
        "fracture": {f"{k}={v}" for k, v in (g.get("fracture") or {}).items()},
        "marrow": {f"{k}={_b(v)}" for k, v in (g.get("marrow") or {}).items()},
    }


def _b(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def score(pairs: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> tuple[list[FieldScore], list[Miss]]:
    scores = {f: FieldScore(field=f) for f in FIELDS}
    misses: list[Miss] = []
    for rid, gold, pred in pairs:
        for f in FIELDS:
            s, g, p = scores[f], gold[f], pred[f]
            if f in COLLECTIONS:
                s.tp += len(g & p)
                s.fp += len(p - g)
                s.fn += len(g - p)
                if g != p:
                    misses.append(Miss(report=rid, field=f, gold=sorted(g - p), predicted=sorted(p - g)))
            elif g != p or g is not None:
                if g is not None and p == g:
                    s.tp += 1
                else:
                    if p is not None:
                        s.fp += 1
                    if g is not None:
                        s.fn += 1
                    misses.append(Miss(report=rid, field=f, gold=g, predicted=p))
    return list(scores.values()), misses


def evaluate(name: str = "dev", data_dir: str | Path | None = None, rules: str | None = None) -> EvalReport:
    """Run the extractor on every report of the set and score it against the gold annotations."""
    from spinemets.reports.extract import extract
    from spinemets.reports.rules import load_rules

    folder, gold = load_set(name, data_dir)
    scope = load_scope(name, data_dir)
    unscored = 0
    rs = load_rules(rules=rules)
    start = time.perf_counter()
    pairs = []
    accuracy = PrefillAccuracy()
    negation = FieldScore(field="negation")
    for rid in sorted(gold):
        text = report_text((folder / f"{rid}.txt").read_text(encoding="utf-8"))
        result = extract(text, rule_set=rs)
        g, p = gold_fields(gold[rid]), predicted_fields(result)
        if scope is not None:
            unscored += sum(1 for x in p["fracture"] if x.split("=", 1)[0] not in scope)
            p["fracture"] = {x for x in p["fracture"] if x.split("=", 1)[0] in scope}
            outside = {x for x in g["fracture"] if x.split("=", 1)[0] not in scope}
            if outside:
                raise InvalidInputError("set", f"{name}.gold.yaml: {rid}: {sorted(outside)[0]} is outside the set's "
                                               f"declared fracture features ({name}.scope.yaml)")
        pairs.append((rid, g, p))
        raw = gold[rid] or {}
        for comp, pre in result.prefill.sins.items():
            if comp in ("lesion", "collapse", "alignment", "posterolateral") and pre.value is not None:
                gold_value = (raw.get("sins") or {}).get(comp)
                accuracy.add(pre.confidence, gold_value != pre.value,
                             f"{rid}  SINS {comp}: {gold_value!r} / {pre.value!r}  ({'; '.join(e.text for e in pre.evidence)!r})",
                             _wrong_kind(raw, "sins", gold_value))
        for comp, pre in result.prefill.escc.items():
            if comp != "grade" and pre.value is not None:
                gold_value = (raw.get("escc") or {}).get(comp)
                accuracy.add(pre.confidence, gold_value != pre.value,
                             f"{rid}  ESCC {comp}: {gold_value!r} / {pre.value!r}  ({'; '.join(e.text for e in pre.evidence)!r})",
                             _wrong_kind(raw, "escc", gold_value))
        neg_g = {x for x in g["escc"] | g["fracture"] if x.endswith(("=false", "=absent"))}
        neg_p = {x for x in p["escc"] | p["fracture"] if x.endswith(("=false", "=absent"))}
        negation.tp += len(neg_g & neg_p)
        negation.fp += len(neg_p - neg_g)
        negation.fn += len(neg_g - neg_p)
    seconds = time.perf_counter() - start
    fields, misses = score(pairs)
    overall = FieldScore(field="all fields", tp=sum(f.tp for f in fields), fp=sum(f.fp for f in fields),
                         fn=sum(f.fn for f in fields))
    return EvalReport(set=name, reports=len(pairs), seconds=seconds, fields=fields, overall=overall, misses=misses,
                      negation=negation, prefill_accuracy=accuracy, fracture_scope=scope, unscored=unscored)


def report_text(raw: str) -> str:
    """The report as written: a set's files may open with '# source: ...' lines naming the public case material."""
    lines = raw.splitlines(keepends=True)
    while lines and lines[0].lstrip().startswith("# source"):
        lines.pop(0)
    return "".join(lines).lstrip("\n")


def _wrong_kind(raw: dict[str, Any], instrument: str, gold_value: Any) -> str:
    """How a wrong pre-fill is wrong (see PrefillAccuracy.by_kind)."""
    if gold_value is not None:
        return "contradicts"
    return "unstated" if raw.get(instrument) or (instrument == "escc" and raw.get("escc_grade")) else "not_scored"


# --- several lesions per report --------------------------------------------------------------------------------------

LEVEL_FIELDS = ("sins.lesion", "sins.collapse", "sins.alignment", "sins.posterolateral", "escc", "escc_grade",
                "scored")
LESION_KEYS = {"span", "benign", "sins", "escc", "escc_grade"}


class LevelEvalReport(BaseModel):
    set: str
    reports: int
    lesions: int
    fields: list[FieldScore]
    overall: FieldScore
    wrong_prefills: int = Field(description="values pre-filled for a lesion level that differ from the gold or that "
                                "the gold leaves unknown")
    prefilled: int
    misses: list[Miss] = Field(default_factory=list)

    def to_text(self, verbose: bool = False) -> str:
        lines = [f"{self.set}: {self.reports} reports, {self.lesions} lesions (per-level pre-fill)",
                 f"{'field':<22} {'P':>6} {'R':>6} {'F1':>6}   tp  fp  fn"]
        for f in [*self.fields, self.overall]:
            lines.append(f"{f.field:<22} {_pct(f.precision):>6} {_pct(f.recall):>6} {_pct(f.f1):>6} "
                         f"{f.tp:4} {f.fp:3} {f.fn:3}")
        share = self.wrong_prefills / self.prefilled if self.prefilled else None
        lines.append(f"wrong pre-fills: {self.wrong_prefills} of {self.prefilled} values ({_pct(share)})")
        if verbose:
            lines += [f"  {m.report}  {m.field}: gold {m.gold!r} / predicted {m.predicted!r}" for m in self.misses]
        return "\n".join(lines)


def _level_values(pre: Any) -> dict[str, Any]:
    sins = {k: v.value for k, v in pre.sins.items()}
    return {
        "sins.lesion": sins.get("lesion"), "sins.collapse": sins.get("collapse"),
        "sins.alignment": sins.get("alignment"), "sins.posterolateral": sins.get("posterolateral"),
        "escc": {f"{k}={_b(v.value)}" for k, v in pre.escc.items() if k != "grade" and v.value is not None},
        "escc_grade": pre.escc_grade,
        "scored": "yes" if pre.applies.get("sins") or pre.applies.get("escc") else "no",
    }


def _gold_level_values(g: dict[str, Any]) -> dict[str, Any]:
    sins = g.get("sins") or {}
    grade = g.get("escc_grade")
    return {
        "sins.lesion": sins.get("lesion"), "sins.collapse": sins.get("collapse"),
        "sins.alignment": sins.get("alignment"), "sins.posterolateral": sins.get("posterolateral"),
        "escc": {f"{k}={_b(v)}" for k, v in (g.get("escc") or {}).items()},
        "escc_grade": None if grade is None else str(grade),
        "scored": "no" if g.get("benign") else "yes",
    }


def evaluate_levels(name: str, data_dir: str | Path | None = None) -> LevelEvalReport:
    """Score the per-level pre-fill (``extract(..., every_level=True)``) on a set annotated lesion by lesion (a gold
    ``lesions`` mapping: level -> span, benign, sins, escc, escc_grade).  Each gold lesion is compared with the
    pre-fill of its level (or, for a span, of the first level of the span the reader pre-filled); a level the reader
    pre-fills that lies in no gold lesion counts every value it fills as wrong."""
    from spinemets.levels import level_range
    from spinemets.reports.extract import extract
    from spinemets.reports.rules import load_rules

    root = Path(data_dir) if data_dir else DATA_DIR
    gold_path, folder = root / f"{name}.gold.yaml", root / name
    if not gold_path.is_file() or not folder.is_dir():
        raise InvalidInputError("set", f"no annotated set {name!r} in {root}")
    gold = yaml.safe_load(gold_path.read_text(encoding="utf-8")) or {}
    rs = load_rules()
    scores = {f: FieldScore(field=f) for f in LEVEL_FIELDS}
    misses: list[Miss] = []
    wrong = filled = n_lesions = 0
    for rid in sorted(gold):
        g = gold[rid] or {}
        lesions = g.get("lesions") or {}
        for level, lesion in lesions.items():
            unknown = set(lesion or {}) - LESION_KEYS
            if unknown:
                raise InvalidInputError("set", f"{gold_path.name}: {rid}: {level}: unknown key {sorted(unknown)[0]!r}")
        result = extract(report_text((folder / f"{rid}.txt").read_text(encoding="utf-8")), rule_set=rs,
                         every_level=True)
        predicted = {lp.level: lp.prefill for lp in result.level_prefills}
        if result.index_level is not None:
            predicted[result.index_level] = result.prefill
        covered: set[str] = set()
        for level, lesion in lesions.items():
            lesion = lesion or {}
            n_lesions += 1
            span = level_range(str(lesion.get("span") or level))
            covered |= set(span)
            at = level if level in predicted else next((v for v in span if v in predicted), None)
            gv = _gold_level_values(lesion)
            pv = _level_values(predicted[at]) if at is not None else {f: (set() if f == "escc" else None)
                                                                       for f in LEVEL_FIELDS}
            if at is None:
                pv["scored"] = "no"
            for f in LEVEL_FIELDS:
                s, gval, pval = scores[f], gv[f], pv[f]
                if f == "escc":
                    s.tp += len(gval & pval)
                    s.fp += len(pval - gval)
                    s.fn += len(gval - pval)
                    filled += len(pval)
                    wrong += len(pval - gval)
                    if gval != pval:
                        misses.append(Miss(report=f"{rid} {level}", field=f, gold=sorted(gval - pval),
                                           predicted=sorted(pval - gval)))
                    continue
                if pval is not None and f != "scored":
                    filled += 1
                    wrong += pval != gval
                if gval is not None and pval == gval:
                    s.tp += 1
                elif gval is not None or pval is not None:
                    s.fp += pval is not None
                    s.fn += gval is not None
                    misses.append(Miss(report=f"{rid} {level}", field=f, gold=gval, predicted=pval))
        for level, pre in predicted.items():
            if level in covered:
                continue
            pv = _level_values(pre)
            extra = [f for f in LEVEL_FIELDS if f not in ("scored", "escc") and pv[f] is not None] + sorted(pv["escc"])
            filled += len(extra)
            wrong += len(extra)
            scores["scored"].fp += pv["scored"] == "yes"
            if extra:
                misses.append(Miss(report=f"{rid} {level}", field="unannotated level", gold=None, predicted=extra))
    fields = list(scores.values())
    overall = FieldScore(field="all fields", tp=sum(f.tp for f in fields), fp=sum(f.fp for f in fields),
                         fn=sum(f.fn for f in fields))
    return LevelEvalReport(set=name, reports=len(gold), lesions=n_lesions, fields=fields, overall=overall,
                           wrong_prefills=wrong, prefilled=filled, misses=misses)
