"""The instruments the API and the web pages expose, found by name in the core.

Each feature is a core function ``f(data, kb) -> Result`` with its pydantic input and result models.
Interpretation modules written separately (``spinemets.interpret.*``) are optional: a feature whose
module is absent is simply not offered.  To expose a new one, add a :class:`Feature` row here (and,
for a bespoke page, a template under ``web/templates/features/``); the generic form and result views
work for any input model made of scalars, enums, literals and lists of them.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

log = logging.getLogger("spinemets.api")


@dataclass(frozen=True)
class Feature:
    name: str  # URL segment and field prefix
    title: str
    blurb: str
    module: str
    func: str
    input_model: str
    result_model: str
    group: str  # "score", "interpret" or "core"

    @property
    def path(self) -> str:
        return f"/api/v1/{self.name}"


@dataclass(frozen=True)
class LoadedFeature:
    feature: Feature
    func: Callable[..., Any]
    input_model: type[BaseModel]
    result_model: type[BaseModel]

    @property
    def name(self) -> str:
        return self.feature.name

    @property
    def title(self) -> str:
        return self.feature.title


FEATURES: tuple[Feature, ...] = (
    Feature("pathway", "Imaging pathway", "What to image, how and how fast, for a clinical scenario.",
            "spinemets.pathway", "pathway", "PathwayInput", "PathwayResult", "core"),
    Feature("sins", "SINS", "Spinal Instability Neoplastic Score (Fisher 2010) with the running total.",
            "spinemets.scores.sins", "sins", "SinsInput", "SinsResult", "score"),
    Feature("escc", "ESCC", "Epidural spinal cord compression grade (Bilsky 2010) from a grade or findings.",
            "spinemets.scores.escc", "escc", "EsccInput", "EsccResult", "score"),
    Feature("noms", "NOMS", "Neurologic, oncologic, mechanical, systemic treatment framing (Laufer 2013).",
            "spinemets.scores.noms", "noms", "NomsInput", "NomsResult", "score"),
    Feature("prognosis", "Prognostic scores", "Revised Tokuhashi, Tomita, modified Bauer and NESMS side by side, with "
            "what validation studies found.", "spinemets.scores.prognosis", "prognosis", "PrognosisInput",
            "PrognosisResult", "score"),
    Feature("tokuhashi", "Revised Tokuhashi", "Revised Tokuhashi score (Tokuhashi 2005): expected survival from six items.",
            "spinemets.scores.prognosis", "tokuhashi", "PrognosisInput", "ScoreResult", "prognosis"),
    Feature("tomita", "Tomita", "Tomita score (Tomita 2001): surgical strategy from three factors (points not yet "
            "confirmed in the paper).", "spinemets.scores.prognosis", "tomita", "PrognosisInput", "ScoreResult",
            "prognosis"),
    Feature("bauer", "Modified Bauer", "Modified Bauer score (Leithner 2008): four favourable factors.",
            "spinemets.scores.prognosis", "bauer", "PrognosisInput", "ScoreResult", "prognosis"),
    Feature("nesms", "NESMS", "New England Spinal Metastasis Score: modified Bauer, walking and albumin (thresholds "
            "not yet confirmed in the paper).", "spinemets.scores.prognosis", "nesms", "PrognosisInput",
            "ScoreResult", "prognosis"),
    Feature("probability", "Post-test probability", "Bayes with published sensitivity and specificity; Fagan nomogram.",
            "spinemets.interpret.probability", "post_test_probability", "ProbabilityInput", "ProbabilityResult", "score"),
    Feature("fracture", "Fracture differential", "Osteoporotic versus malignant vertebral compression fracture: feature checklist.",
            "spinemets.interpret.fracture", "fracture_differential", "FractureInput", "FractureResult", "interpret"),
    Feature("marrow", "Marrow signal", "Interpretation of vertebral marrow signal on MRI.",
            "spinemets.interpret.marrow", "marrow_signal", "MarrowInput", "MarrowResult", "interpret"),
    Feature("quantitative", "Quantitative imaging", "Quantitative measurements (e.g. ADC, SUV, Dixon) against published cut-offs.",
            "spinemets.interpret.quantitative", "quantitative", "QuantitativeInput", "QuantitativeResult", "interpret"),
    Feature("primaries", "Likely primaries", "Likely primary tumours for a lesion type.",
            "spinemets.interpret.primaries", "likely_primaries", "PrimariesInput", "PrimariesResult", "interpret"),
)


def _load(f: Feature) -> LoadedFeature | None:
    try:
        mod = importlib.import_module(f.module)
    except ModuleNotFoundError as exc:
        if exc.name == f.module:
            return None
        raise
    try:
        func = getattr(mod, f.func)
        inp = getattr(mod, f.input_model)
        out = getattr(mod, f.result_model)
    except AttributeError as exc:
        log.warning("feature %s: %s is present but lacks %s; not exposed", f.name, f.module, exc.name)
        return None
    return LoadedFeature(f, func, inp, out)


@functools.cache
def available() -> tuple[LoadedFeature, ...]:
    """The features whose core module is installed, in menu order."""
    return tuple(x for x in (_load(f) for f in FEATURES) if x is not None)


def get(name: str) -> LoadedFeature | None:
    return next((x for x in available() if x.feature.name == name), None)
