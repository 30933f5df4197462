"""CLI commands for interpretation: fracture, marrow, quantitative, primaries (import-light)."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def _pairs(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected FEATURE=present|absent|unknown")
    return key.strip(), value.strip()


def _emit(result: Any, as_json: bool) -> int:
    print(result.model_dump_json(indent=2) if as_json else result.to_text())
    return 0 if result.status == "complete" else 3


def cmd_fracture(a: argparse.Namespace) -> int:
    from spinemets.interpret.fracture import fracture_differential

    data: dict[str, Any] = dict(a.feature or [])
    if a.pre_test is not None:
        data["pre_test"] = a.pre_test
    if a.known_cancer is not None:
        data["known_cancer"] = a.known_cancer
    if a.pre_test_from_kb:
        data["pre_test_from_kb"] = True
    return _emit(fracture_differential(data), a.json)


def cmd_marrow(a: argparse.Namespace) -> int:
    from spinemets.interpret.marrow import marrow_signal

    keys = ("t1", "t2", "stir", "in_phase", "opposed_phase", "dwi", "adc", "t1_gd_fs", "crosses_disc_space")
    return _emit(marrow_signal({k: getattr(a, k) for k in keys if getattr(a, k) is not None}), a.json)


def cmd_quantitative(a: argparse.Namespace) -> int:
    from spinemets.interpret.quantitative import quantitative

    keys = ("in_phase", "opposed_phase", "sir", "drop_percent", "dixon_fat_fraction_percent", "adc",
            "ct_mean_hu", "ct_max_hu", "treated")
    return _emit(quantitative({k: getattr(a, k) for k in keys if getattr(a, k) is not None}), a.json)


def cmd_primaries(a: argparse.Namespace) -> int:
    from spinemets.interpret.primaries import likely_primaries

    return _emit(likely_primaries({"lesion_type": a.lesion_type} if a.lesion_type else {}), a.json)


def register(sub: Any, add: Callable[[str, Any, str], argparse.ArgumentParser]) -> None:
    from spinemets.cli import _bool

    f = add("fracture", cmd_fracture, "osteoporotic vs pathological vertebral fracture from CT/MRI features")
    f.add_argument("--feature", action="append", type=_pairs, metavar="FEATURE=present|absent|unknown",
                   help="repeat; feature ids: `spinemets kb show fracture_features`")
    f.add_argument("--pre-test", type=float, help="pre-test probability of malignancy 0-1")
    f.add_argument("--known-cancer", type=_bool, metavar="yes|no")
    f.add_argument("--pre-test-from-kb", action="store_true", help="use the knowledge base's published prior")

    m = add("marrow", cmd_marrow, "rank marrow tissues by how well a signal pattern matches")
    for seq in ("t1", "t2", "stir", "in_phase", "opposed_phase", "dwi", "adc", "t1_gd_fs"):
        m.add_argument("--" + seq.replace("_", "-"), dest=seq, help=f"signal on {seq}")
    m.add_argument("--crosses-disc-space", type=_bool, metavar="yes|no")

    q = add("quantitative", cmd_quantitative, "chemical shift, Dixon fat fraction, ADC and CT HU against published cut-offs")
    for name, text in (("in_phase", "in-phase signal intensity"), ("opposed_phase", "opposed-phase signal intensity"),
                       ("sir", "opposed/in-phase signal ratio"), ("drop_percent", "signal drop %"),
                       ("dixon_fat_fraction_percent", "Dixon fat fraction %"), ("adc", "ADC x10^-3 mm2/s"),
                       ("ct_mean_hu", "mean CT attenuation, HU"), ("ct_max_hu", "maximum CT attenuation, HU")):
        q.add_argument("--" + name.replace("_", "-"), dest=name, type=float, help=text)
    q.add_argument("--treated", type=_bool, metavar="yes|no")

    p = add("primaries", cmd_primaries, "likely primary tumours for a lesion type")
    p.add_argument("--lesion-type", help="lytic / blastic / mixed / lytic_expansile")
