"""Measurements from the images, interpreted by the quantitative engine (issue 14): each function takes volumes and a
ROI and returns the ROI statistics with the interpretation of :func:`spinemets.interpret.quantitative.quantitative`.

* **CT**: the mean and the maximum HU of the ROI (bone island against sclerotic metastasis).
* **Chemical shift**: the same ROI on the in-phase and opposed-phase series of one frame of reference: the signal
  intensity ratio and the signal drop, computed by the engine from the two means.
* **Dixon**: the same ROI on the fat and water images: fat fraction = fat / (fat + water) of the ROI means, in %.
* **ADC**: the mean of an ADC map, in the unit the caller states for the map's values (no unit is guessed: scanners
  store 10^-6 or 10^-3 mm²/s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from spinemets.dicom.roi import RoiStats, circle, polygon, same_frame, sphere
from spinemets.dicom.series import SeriesError, Volume

Shape = Literal["sphere", "circle", "polygon"]
Points = Sequence[Sequence[float]]
AdcUnit = Literal["1e-6 mm2/s", "1e-3 mm2/s", "mm2/s"]
ADC_TO_1E3 = {"1e-6 mm2/s": 1e-3, "1e-3 mm2/s": 1.0, "mm2/s": 1e3}  # unit conversions, not clinical facts
ADC_UNIT_FLOOR = 0.01  # x10^-3 mm2/s: a mean this low means the unit was given wrong (a factor of 1000), not tissue


class SeriesInfo(BaseModel):
    modality: str
    description: str
    series_uid: str
    images: int
    spacing_mm: list[float]


class Measurement(BaseModel):
    """ROI statistics per series, the derived value and the interpretation."""

    kind: str = Field(description="ct, chemical_shift, dixon, adc or roi")
    rois: dict[str, RoiStats]
    series: dict[str, SeriesInfo]
    derived: dict[str, float] = Field(default_factory=dict)
    interpretation: Any = None  # a QuantitativeResult, or None when the measurement has none
    note: str | None = None


AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}  # DICOM Age String units, in years


def patient_age(volume: Volume) -> float | None:
    """The patient's age in years as the images state it (Patient's Age, else birth and study dates), or None."""
    import datetime as dt

    header = volume.header
    if header is None:
        return None
    text = str(header.get("PatientAge", "") or "").strip()
    if len(text) == 4 and text[:3].isdigit() and text[3] in AGE_UNITS:
        return int(text[:3]) * AGE_UNITS[text[3]]
    try:
        born = dt.datetime.strptime(str(header.get("PatientBirthDate", "")), "%Y%m%d").date()
        studied = dt.datetime.strptime(str(header.get("StudyDate", "")), "%Y%m%d").date()
    except ValueError:
        return None
    return (studied - born).days / 365.25 if studied >= born else None


def _child_note(volume: Volume) -> str | None:
    """A child's images: the cut-offs' study populations (listed with each) must be checked for children."""
    from spinemets.pathway import group_threshold

    age = patient_age(volume)
    if age is None or age >= group_threshold("child"):
        return None
    return (f"The images give the patient's age as {age:.0f} years: check that the study populations of the "
            "cut-offs (given with each) include children before reading this measurement against them.")


def _notes(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return " ".join(n if n.endswith(".") else n + "." for n in kept) or None


def _roi(volume: Volume, center: Sequence[float] | None, radius_mm: float | None, shape: Shape,
         points: Points | None = None) -> RoiStats:
    """The ROI's statistics: a sphere or circle (centre and radius), or a polygon (its corners)."""
    if shape == "polygon":
        if points is None:
            raise SeriesError("a polygon ROI needs its corners", "points")
        if center is not None or radius_mm is not None:
            raise SeriesError("give the ROI either as a polygon or as a centre and a radius, not both", "points")
        return polygon(volume, points)
    if points is not None:
        raise SeriesError(f"corners are given for a polygon; this ROI is a {shape}", "points")
    if center is None or radius_mm is None:
        raise SeriesError(f"a {shape} ROI needs its centre and radius", "center")
    return sphere(volume, center, radius_mm) if shape == "sphere" else circle(volume, center, radius_mm)


def _mr_pair(a: Volume, b: Volume, what: str, names: tuple[str, str]) -> None:
    """Two MR series of one frame of reference, not the same series twice."""
    for v, name in ((a, names[0]), (b, names[1])):
        if v.modality != "MR":
            raise SeriesError(f"{what}: the {name} series is {v.modality or 'of no stated modality'}, not MR",
                              "series")
    if a.series_uid == b.series_uid:
        raise SeriesError(f"{what}: the same series was given as {names[0]} and {names[1]}", "series")
    same_frame(a, b, what)
    scales = (a.vendor_scales, b.vendor_scales)
    if any(scales) and (len(scales[0]) != 1 or scales[0] != scales[1] or a.rescales != b.rescales):
        raise SeriesError(f"{what}: the scanner scaled the two series differently (Philips private scale slopes "
                          f"{_listed(scales[0])} and {_listed(scales[1])}): their signal cannot be compared from the "
                          "stored values, and the vendor's scaling is not applied yet", "series")
    if a.rescales != b.rescales and not (a.units and a.units == b.units):
        raise SeriesError(f"{what}: the two series are rescaled differently ({_rescales(a)} and {_rescales(b)}) and "
                          "state no common unit for their values: MR signal rescaled differently does not compare "
                          "(a scanner's own scaling, or a private scale removed by de-identification, may be behind "
                          "it)", "series")


def _rescales(v: Volume) -> str:
    return " / ".join(f"slope {s:g}, intercept {i:g}" for s, i in sorted(v.rescales)) or "none"


def _listed(values: frozenset[float]) -> str:
    return ", ".join(f"{v:g}" for v in sorted(values)) or "none"


PHASE_MARGIN = 0.2  # of a cycle: how near a whole (in phase) or half (opposed) cycle an echo must be to count as one


def _phase(volume: Volume) -> tuple[float, float] | None:
    """(the echo's distance from in phase, in cycles of the fat-water frequency difference; the field in T), or None
    when the series does not state its echo time and its frequency or field strength."""
    from spinemets.knowledge.loader import load_kb

    echo = volume.echo
    mhz_ok = 4.0 <= echo.get("imaging_mhz", 0.0) <= 520.0  # 0.1 to 12 T: a value outside is not in MHz
    field_ok = 0.1 <= echo.get("field_t", 0.0) <= 12.0  # tesla (some older scanners wrote gauss: not read)
    if "echo_time_ms" not in echo or not (mhz_ok or field_ok):
        return None
    rows = {r["quantity"]: float(r["value"]) for r in load_kb().table("mr_chemical_shift").rows}
    mhz = echo["imaging_mhz"] if mhz_ok else echo["field_t"] * rows["proton_gyromagnetic_ratio"]
    cycles = echo["echo_time_ms"] * 1e-3 * mhz * 1e6 * rows["fat_water_shift"] * 1e-6
    return abs(cycles - round(cycles)), mhz / rows["proton_gyromagnetic_ratio"]


def echo_check(in_phase: Volume, opposed_phase: Volume) -> str:
    """Whether the echo times say the pair was given the right way round: a note in words; a pair whose echo times
    say it is swapped, or that neither echo is opposed (or in) phase, is refused (the drop would be read backwards,
    or would not be a chemical shift)."""
    a, b = _phase(in_phase), _phase(opposed_phase)
    te = in_phase.echo.get("echo_time_ms"), opposed_phase.echo.get("echo_time_ms")
    if a is None or b is None:
        return ("The echo times were not checked (the images do not state the echo time and the field strength in "
                "tesla or the imaging frequency): make sure the in-phase and opposed-phase series were not swapped.")
    if abs(te[0] - te[1]) < 0.05:  # type: ignore[operator]
        return (f"Both series have the echo time {te[0]:g} ms (a spin-echo Dixon pair, or images computed from fat "
                "and water): the echo times cannot tell which is in phase; make sure they were not swapped.")
    kind = ["in" if d <= PHASE_MARGIN else "opposed" if d >= 0.5 - PHASE_MARGIN else "neither" for d, _ in (a, b)]
    field = f"{a[1]:.2g} T"
    said = (f"echo times {te[0]:g} ms (given as in phase) and {te[1]:g} ms (given as opposed phase) at {field}")
    if kind == ["opposed", "in"]:
        raise SeriesError(f"chemical shift: the {said} say the two series are swapped: the first is opposed phase "
                          "and the second in phase; give them the other way round", "series")
    if kind[0] == kind[1] and kind[0] != "neither":
        raise SeriesError(f"chemical shift: at {field} both echo times ({te[0]:g} and {te[1]:g} ms) are {kind[0]} "
                          "phase: this pair shows no chemical shift", "series")
    if kind == ["in", "opposed"]:
        return f"The {said} agree with the series given."
    return (f"The {said} are not near an in-phase and an opposed-phase time: the echo times could not confirm the "
            "order; make sure the series were not swapped.")


def _info(v: Volume) -> SeriesInfo:
    return SeriesInfo(modality=v.modality, description=v.description, series_uid=v.series_uid,
                      images=v.shape[0], spacing_mm=[round(s, 4) for s in v.spacing])


def roi(volume: Volume, center: Sequence[float] | None, radius_mm: float | None, shape: Shape = "sphere",
        treated: bool | None = None, points: Points | None = None) -> Measurement:
    """A ROI on one series: for CT, the mean and maximum HU interpreted; for other series the statistics only."""
    from spinemets.interpret.quantitative import quantitative

    return of_stats(volume, _roi(volume, center, radius_mm, shape, points), treated)


def of_stats(volume: Volume, stats: RoiStats, treated: bool | None = None) -> Measurement:
    """The measurement of ROI statistics already taken (a sphere, a circle or a SEG's mask) on one series."""
    from spinemets.interpret.quantitative import quantitative

    if volume.modality != "CT":
        return Measurement(kind="roi", rois={"series": stats}, series={"series": _info(volume)},
                           note=f"a {volume.modality or 'non-CT'} series gives signal intensity in arbitrary units: "
                                "it is interpreted as a pair (chemical shift, Dixon) or as an ADC map")
    note = _child_note(volume)
    data: dict[str, Any] = {"ct_mean_hu": round(stats.mean, 1), "ct_max_hu": round(stats.max, 1)}
    if treated is not None:
        data["treated"] = treated
    return Measurement(kind="ct", rois={"series": stats}, series={"series": _info(volume)},
                       derived={"mean_hu": data["ct_mean_hu"], "max_hu": data["ct_max_hu"]},
                       interpretation=quantitative(data), note=note)


def chemical_shift(in_phase: Volume, opposed_phase: Volume, center: Sequence[float] | None, radius_mm: float | None,
                   shape: Shape = "sphere", treated: bool | None = None, points: Points | None = None) -> Measurement:
    """The same ROI on the in-phase and opposed-phase series; the engine computes the ratio and the drop."""
    from spinemets.interpret.quantitative import quantitative

    _mr_pair(in_phase, opposed_phase, "chemical shift", ("in-phase", "opposed-phase"))
    order = echo_check(in_phase, opposed_phase)
    ip = _roi(in_phase, center, radius_mm, shape, points)
    op = _roi(opposed_phase, center, radius_mm, shape, points)
    if ip.mean <= 0:
        raise SeriesError("the in-phase ROI has no signal (mean <= 0): place the ROI in the marrow", "center")
    if op.mean < 0:
        raise SeriesError("the opposed-phase ROI has a negative mean: a magnitude image cannot; is this a phase or "
                          "a processed image?", "series")
    data: dict[str, Any] = {"in_phase": round(ip.mean, 3), "opposed_phase": round(op.mean, 3)}
    if treated is not None:
        data["treated"] = treated
    result = quantitative(data)
    derived = {"in_phase_mean": ip.mean, "opposed_phase_mean": op.mean,
               **{k.removeprefix("chemical_shift_"): v for k, v in result.values.items()
                  if k in ("chemical_shift_sir", "chemical_shift_drop_percent")}}
    return Measurement(kind="chemical_shift", rois={"in_phase": ip, "opposed_phase": op},
                       series={"in_phase": _info(in_phase), "opposed_phase": _info(opposed_phase)},
                       derived=derived, interpretation=result, note=_notes(order, _child_note(in_phase)))


def dixon(fat: Volume, water: Volume, center: Sequence[float] | None, radius_mm: float | None,
          shape: Shape = "sphere", treated: bool | None = None, points: Points | None = None) -> Measurement:
    """Fat fraction (%) from the ROI means of the fat and water images."""
    from spinemets.interpret.quantitative import quantitative

    _mr_pair(fat, water, "Dixon", ("fat", "water"))
    f, w = _roi(fat, center, radius_mm, shape, points), _roi(water, center, radius_mm, shape, points)
    if f.mean < 0 or w.mean < 0 or f.mean + w.mean <= 0:
        raise SeriesError("the fat and water ROI means must be positive: are these the fat and water images?",
                          "series")
    fraction = 100.0 * f.mean / (f.mean + w.mean)
    data: dict[str, Any] = {"dixon_fat_fraction_percent": round(fraction, 2)}
    if treated is not None:
        data["treated"] = treated
    return Measurement(kind="dixon", rois={"fat": f, "water": w}, series={"fat": _info(fat), "water": _info(water)},
                       derived={"fat_fraction_percent": fraction}, interpretation=quantitative(data),
                       note=_child_note(fat))


def adc(adc_map: Volume, center: Sequence[float] | None, radius_mm: float | None, unit: AdcUnit,
        shape: Shape = "sphere", treated: bool | None = None, points: Points | None = None) -> Measurement:
    """The mean ADC of the ROI, converted from the stated *unit* to 10^-3 mm²/s."""
    from spinemets.interpret.quantitative import quantitative

    if unit not in ADC_TO_1E3:
        raise SeriesError(f"the ADC map's unit must be one of {', '.join(ADC_TO_1E3)}, not {unit!r}", "unit")
    if adc_map.modality != "MR":
        raise SeriesError(f"ADC: the series is {adc_map.modality or 'of no stated modality'}, not an MR ADC map",
                          "series")
    stats = _roi(adc_map, center, radius_mm, shape, points)
    value = stats.mean * ADC_TO_1E3[unit]
    if 0 < value < ADC_UNIT_FLOOR:
        raise SeriesError(f"ADC: a mean of {stats.mean:g} in {unit} is {value:g} x10^-3 mm2/s, a thousand times "
                          "below any tissue: check the unit", "unit")
    data: dict[str, Any] = {"adc": round(value, 4)}
    if treated is not None:
        data["treated"] = treated
    return Measurement(kind="adc", rois={"adc": stats}, series={"adc": _info(adc_map)},
                       derived={"adc_1e-3_mm2_s": value}, interpretation=quantitative(data),
                       note=_child_note(adc_map))


ROI_NAMES = {"series": "ROI", "in_phase": "In-phase ROI", "opposed_phase": "Opposed-phase ROI", "fat": "Fat-image ROI",
             "water": "Water-image ROI", "adc": "ADC-map ROI"}
DERIVED_LABELS = {"mean_hu": ("Mean attenuation", " HU"), "max_hu": ("Maximum attenuation", " HU"),
                  "in_phase_mean": ("In-phase mean signal", ""), "opposed_phase_mean": ("Opposed-phase mean signal", ""),
                  "sir": ("Signal intensity ratio (opposed / in-phase)", ""), "drop_percent": ("Signal drop", " %"),
                  "fat_fraction_percent": ("Fat fraction", " %"), "adc_1e-3_mm2_s": ("Mean ADC", " x10^-3 mm2/s")}


def describe(m: Measurement) -> list[str]:
    """The measurement in words, one line each (the command line's text and the web page's summary)."""
    lines = []
    for name, stats in m.rois.items():
        unit = f" {stats.units}" if stats.units else ""
        where = f"on slice {stats.slice_index + 1} " if stats.slice_index is not None else ""
        if stats.slice_index is not None and stats.image_number is not None:
            where += f"(image {stats.image_number}) "
        size = (f", {stats.volume_mm3:.0f} mm3" if stats.volume_mm3 is not None else "") + \
            (f", {stats.area_mm2:.0f} mm2" if stats.area_mm2 is not None else "")
        centre = ", ".join(f"{c:.4g}" for c in stats.center_mm)
        if stats.radius_mm is not None:
            region = f"{stats.shape} of radius {stats.radius_mm:g} mm {where}at ({centre}) mm"
        elif stats.points_mm is not None:
            region = f"polygon of {len(stats.points_mm)} corners {where}centred at ({centre}) mm"
        else:
            region = f"{stats.shape} centred at ({centre}) mm"
        lines.append(f"{ROI_NAMES.get(name, name)}: {region}: mean {stats.mean:.1f}{unit}, max {stats.max:.1f}{unit}, "
                     f"SD {stats.sd:.1f}, {stats.n} voxels{size}")
    for key, value in m.derived.items():
        label, unit = DERIVED_LABELS[key]
        lines.append(f"{label}: {value:.4g}{unit}")
    if m.interpretation is not None:
        lines.extend(m.interpretation.to_text().splitlines())
    if m.note:
        lines.append(m.note[:1].upper() + m.note[1:] + ("" if m.note.endswith(".") else "."))
    return lines
