"""spinemets: decision support for the imaging diagnosis of vertebral metastases.

Public API (imported lazily so that ``spinemets --help`` stays fast)::

    from spinemets import sins, escc, noms, post_test_probability, pathway, assess, load_kb
    from spinemets import fracture_differential, marrow_signal, quantitative, likely_primaries
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "sins": "spinemets.scores.sins",
    "SinsInput": "spinemets.scores.sins",
    "SinsResult": "spinemets.scores.sins",
    "escc": "spinemets.scores.escc",
    "EsccInput": "spinemets.scores.escc",
    "EsccResult": "spinemets.scores.escc",
    "noms": "spinemets.scores.noms",
    "NomsInput": "spinemets.scores.noms",
    "NomsResult": "spinemets.scores.noms",
    "post_test_probability": "spinemets.interpret.probability",
    "ProbabilityInput": "spinemets.interpret.probability",
    "ProbabilityResult": "spinemets.interpret.probability",
    "pathway": "spinemets.pathway",
    "PathwayInput": "spinemets.pathway",
    "PathwayResult": "spinemets.pathway",
    "fracture_differential": "spinemets.interpret.fracture",
    "marrow_signal": "spinemets.interpret.marrow",
    "quantitative": "spinemets.interpret.quantitative",
    "likely_primaries": "spinemets.interpret.primaries",
    "assess": "spinemets.assess",
    "CaseDocument": "spinemets.assess",
    "AssessResult": "spinemets.assess",
    "load_kb": "spinemets.knowledge.loader",
    "check_kb": "spinemets.knowledge.loader",
}

if TYPE_CHECKING:  # pragma: no cover
    from spinemets.assess import AssessResult, CaseDocument, assess
    from spinemets.interpret.fracture import fracture_differential
    from spinemets.interpret.marrow import marrow_signal
    from spinemets.interpret.primaries import likely_primaries
    from spinemets.interpret.quantitative import quantitative
    from spinemets.pathway import PathwayInput, PathwayResult, pathway
    from spinemets.interpret.probability import ProbabilityInput, ProbabilityResult, post_test_probability
    from spinemets.knowledge.loader import check_kb, load_kb
    from spinemets.scores.escc import EsccInput, EsccResult, escc
    from spinemets.scores.noms import NomsInput, NomsResult, noms
    from spinemets.scores.sins import SinsInput, SinsResult, sins

__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """Keeps ``spinemets.assess`` and ``spinemets.pathway`` the functions.

    Importing the submodule of the same name makes Python set it as an attribute
    of this package; without this, ``from spinemets import assess`` would then
    return the module instead of the function.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spinemets' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
