"""DICOM measurements (issue 14): series read from folders into volumes, ROI statistics against phantoms made here
(known HU, a non-unit rescale slope, slices stored in reverse order), the chemical-shift, Dixon and ADC measures, the
interpretation, the DICOM SR read back by highdicom, pydicom's bundled test files, and every error path with its
message and exit code 2."""

from __future__ import annotations

import json
import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from spinemets.dicom import measure
from spinemets.dicom.roi import circle, sphere, voxel_sphere
from spinemets.dicom.series import SeriesError, load_folder
from tests.dicom_phantoms import ct_spheres, write_series

BONE_ISLAND = ((0.0, 0.0, 40.0), 10.0, 1300.0)
METASTASIS = ((22.0, 22.0, 40.0), 7.0, 700.0)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct") / "series"
    made = ct_spheres(folder, [BONE_ISLAND, METASTASIS], slope=2.0, intercept=-1024.0, reverse=True)
    return folder, made


def _expected(values, spacing=(0.8, 0.8, 2.0), origin=(-50.0, -50.0, 0.0), center=(0, 0, 40), radius=6.0):
    k, j, i = np.meshgrid(*(np.arange(n) for n in values.shape), indexing="ij")
    d2 = ((origin[0] + i * spacing[0] - center[0]) ** 2 + (origin[1] + j * spacing[1] - center[1]) ** 2
          + (origin[2] + k * spacing[2] - center[2]) ** 2)
    return values[d2 <= radius ** 2]


def test_a_ct_phantom_with_slope_intercept_and_reversed_files_measures_its_known_values(ct):
    folder, made = ct
    volume = load_folder(folder)
    assert volume.shape == (40, 128, 128) and volume.units == "HU" and volume.modality == "CT"
    assert np.allclose(volume.spacing, (0.8, 0.8, 2.0))
    assert np.allclose(volume.to_patient([0, 0, 0]), (-50.0, -50.0, 0.0))  # sorted by position, not by file
    inside = sphere(volume, (0, 0, 40), 6.0)
    want = _expected(made["values"])
    assert inside.n == want.size and inside.mean == pytest.approx(1300.0) and inside.sd == pytest.approx(0.0)
    assert inside.volume_mm3 == pytest.approx(want.size * 0.8 * 0.8 * 2.0)
    edge = sphere(volume, (22, 22, 40), 9.0)  # beyond the 7 mm metastasis: water around it
    want = _expected(made["values"], center=(22, 22, 40), radius=9.0)
    assert edge.n == want.size and edge.mean == pytest.approx(want.mean(), abs=0.5) and edge.max == 700.0
    assert edge.min == pytest.approx(0.0)
    flat = circle(volume, (22, 22, 40), 5.0)
    assert flat.shape == "circle" and flat.mean == pytest.approx(700.0)
    assert flat.n == pytest.approx(np.pi * 25 / 0.64, rel=0.1)  # one slice's disc
    by_voxel = voxel_sphere(volume, (62.5, 62.5, 20), 6.0)  # (62.5*0.8 - 50, ..., 20*2) = (0, 0, 40)
    assert by_voxel.mean == pytest.approx(1300.0)


def test_ct_interpretation_bone_island_and_metastasis(ct):
    volume = load_folder(ct[0])
    island = measure.roi(volume, (0, 0, 40), 6.0)
    assert island.derived == {"mean_hu": 1300.0, "max_hu": 1300.0}
    assert island.interpretation.values == {"ct_mean_hu": 1300.0, "ct_max_hu": 1300.0}
    assert all(m.malignant_side == 0 for m in island.interpretation.by_measure)  # above both bone-island cut-offs
    lesion = measure.roi(volume, (22, 22, 40), 4.0)
    assert all(m.malignant_side == m.malignant_side + m.benign_side for m in lesion.interpretation.by_measure)


def _mr_pair(tmp_path, in_value, out_value, frame_same=True, background=(400.0, 380.0)):
    ip = np.full((10, 64, 64), background[0])
    op = np.full((10, 64, 64), background[1])
    ip[:, 20:44, 20:44], op[:, 20:44, 20:44] = in_value, out_value
    first = write_series(tmp_path / "ip", ip, modality="MR", spacing=(1.0, 1.0, 4.0), origin=(-32.0, -32.0, 0.0))
    write_series(tmp_path / "op", op, modality="MR", spacing=(1.0, 1.0, 4.0), origin=(-32.0, -32.0, 0.0),
                 frame=first["frame"] if frame_same else None, study=first["study"])
    return load_folder(tmp_path / "ip"), load_folder(tmp_path / "op")


def test_chemical_shift_pair_with_a_known_drop(tmp_path):
    ip, op = _mr_pair(tmp_path, 1000.0, 700.0)
    m = measure.chemical_shift(ip, op, (0.0, 0.0, 20.0), 5.0)
    assert m.derived["sir"] == pytest.approx(0.7) and m.derived["drop_percent"] == pytest.approx(30.0)
    assert m.rois["in_phase"].units is None  # MR signal has no unit
    other = _mr_pair(tmp_path / "b", 1000.0, 700.0, frame_same=False)
    with pytest.raises(SeriesError, match="different frames of reference"):
        measure.chemical_shift(*other, (0.0, 0.0, 20.0), 5.0)


def test_dixon_and_adc(tmp_path):
    fat, water = _mr_pair(tmp_path, 300.0, 700.0)
    assert measure.dixon(fat, water, (0.0, 0.0, 20.0), 5.0).derived["fat_fraction_percent"] == pytest.approx(30.0)
    values = np.full((6, 32, 32), 2000.0)
    values[:, 10:22, 10:22] = 800.0
    write_series(tmp_path / "adc", values, modality="MR", spacing=(1.5, 1.5, 5.0), origin=(-24.0, -24.0, 0.0))
    m = measure.adc(load_folder(tmp_path / "adc"), (-0.75, -0.75, 12.5), 4.0, "1e-6 mm2/s")
    assert m.derived["adc_1e-3_mm2_s"] == pytest.approx(0.8) and m.interpretation.values["adc"] == pytest.approx(0.8)
    with pytest.raises(SeriesError, match="unit must be one of"):
        measure.adc(load_folder(tmp_path / "adc"), (-0.75, -0.75, 12.5), 4.0, "furlongs")  # type: ignore[arg-type]


def test_the_sr_is_written_and_read_back(ct, tmp_path, cli):
    folder, _ = ct
    out = tmp_path / "sr.dcm"
    r = cli("dicom", "sr", str(folder), "--center", "0,0,40", "--radius-mm", "6", "--out", str(out))
    assert r.returncode == 0 and "40 source images referenced" in r.stdout
    sr = hd.sr.srread(out)
    source = pydicom.dcmread(next(folder.iterdir()))
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PatientID == source.PatientID
    assert sr.CompletionFlag == "PARTIAL" and sr.VerificationFlag == "UNVERIFIED"
    group = sr.content.get_volumetric_roi_measurement_groups()[0]
    values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
    assert values["Mean"] == (pytest.approx(1300.0), "[hnsf'U]") and values["Maximum"][0] == pytest.approx(1300.0)
    assert values["Volume"][1] == "mm3"
    evaluations = {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()}
    assert evaluations == {"CT mean attenuation": "malignant side of 0 of 2 cut-offs",
                           "CT maximum attenuation": "malignant side of 0 of 2 cut-offs"}
    codes = {q.name.value: q.value.value for q in group.get_qualitative_evaluations()}
    assert codes == {"CT-MEAN-HU": "M0-OF-2", "CT-MAX-HU": "M0-OF-2"}
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == source.SeriesInstanceUID and len(evidence.ReferencedSOPSequence) == 40
    surface = group.reference_type
    assert surface.meaning == "Volume Surface"
    planar = tmp_path / "planar.dcm"
    assert cli("dicom", "sr", str(folder), "--center", "0,0,40", "--radius-mm", "6", "--shape", "circle",
               "--out", str(planar)).returncode == 0
    assert hd.sr.srread(planar).content.get_planar_roi_measurement_groups()


def test_the_cli_json_and_text(ct, cli):
    r = cli("dicom", "roi", str(ct[0]), "--center", "0,0,40", "--radius-mm", "6", "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["rois"]["series"]["mean"] == pytest.approx(1300.0)
    assert data["interpretation"]["values"]["ct_max_hu"] == 1300.0 and "Decision support" in data["disclaimer"]
    text = cli("dicom", "roi", str(ct[0]), "--center", "0,0,40", "--radius-mm", "6").stdout
    assert "mean 1300.0 HU" in text and "Decision support" in text


@pytest.mark.parametrize("args, words", [
    (["roi", "{missing}", "--center", "0,0,40", "--radius-mm", "6"], "no such folder"),
    (["roi", "{empty}", "--center", "0,0,40", "--radius-mm", "6"], "no DICOM image files"),
    (["roi", "{ct}", "--center", "0,0,400", "--radius-mm", "6"], "lies outside the volume"),
    (["roi", "{ct}", "--center", "0,0,40", "--radius-mm", "0.1"], "holds no voxel centre"),
    (["roi", "{ct}", "--center", "0,0", "--radius-mm", "6"], "expected X,Y,Z"),
    (["roi", "{ct}", "--center", "0,0,40", "--radius-mm", "-3"], "positive number of mm"),
    (["roi", "{mixed}", "--center", "0,0,40", "--radius-mm", "6"], "belong to 2 series (" ),
    (["roi", "{gap}", "--center", "0,0,40", "--radius-mm", "6"], "unevenly spaced"),
    (["roi", "{nospacing}", "--center", "0,0,40", "--radius-mm", "6"], "has no pixel spacing (PixelSpacing)"),
])
def test_bad_input_exits_2_with_the_reason(ct, tmp_path, cli, args, words):
    folder = ct[0]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("not DICOM")
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    ct_spheres(tmp_path / "other", [BONE_ISLAND], shape=(4, 32, 32))
    shutil.copy(next((tmp_path / "other").iterdir()), mixed / "zz.dcm")
    gap = tmp_path / "gap"
    shutil.copytree(folder, gap)
    (gap / "img0020.dcm").unlink()
    nospacing = tmp_path / "nospacing"
    shutil.copytree(folder, nospacing)
    first = nospacing / "img0000.dcm"
    ds = pydicom.dcmread(first)
    del ds.PixelSpacing
    ds.save_as(first)
    places = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "ct": folder, "mixed": mixed, "gap": gap,
              "nospacing": nospacing}
    r = cli("dicom", *[a.format(**places) for a in args])
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


def test_pydicoms_bundled_files(tmp_path):
    for name in ("CT_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(get_testdata_file(name), folder / name)
        volume = load_folder(folder)
        assert volume.shape[0] == 1
        centre = volume.to_patient([volume.shape[2] / 2, volume.shape[1] / 2, 0])
        stats = circle(volume, centre, 3.0)
        assert stats.n > 0 and np.isfinite(stats.mean)
    # the same MR image, uncompressed and JPEG-LS: the same numbers
    plain, jls = tmp_path / "plain", tmp_path / "MR_small_jpeg_ls_lossless.dcm"
    plain.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), plain / "a.dcm")
    a, b = load_folder(plain), load_folder(jls)
    assert np.array_equal(a.array, b.array)


def test_a_compressed_image_without_a_decoder_names_the_transfer_syntax(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("JPGExtended.dcm"))
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1.0
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
    (tmp_path / "s").mkdir()
    ds.save_as(tmp_path / "s" / "a.dcm")
    with pytest.raises(SeriesError, match=r"JPEG Extended.*pylibjpeg"):
        load_folder(tmp_path / "s")


# --- DICOMweb: a real Orthanc ----------------------------------------------------------------------------------------

from tests.orthanc_support import orthanc, upload  # noqa: E402,F401


def test_a_series_is_measured_from_a_dicomweb_server_and_the_sr_stored_back(orthanc, ct, tmp_path, cli):  # noqa: F811
    folder, made = ct
    upload(orthanc, folder)
    url = f"{orthanc}/studies/{made['study']}/series/{made['series']}"
    r = cli("dicom", "roi", url, "--center", "0,0,40", "--radius-mm", "6", "--json")
    assert r.returncode == 0, r.stderr
    from_server = json.loads(r.stdout)["rois"]["series"]
    from_folder = json.loads(cli("dicom", "roi", str(folder), "--center", "0,0,40", "--radius-mm", "6",
                                 "--json").stdout)["rois"]["series"]
    assert from_server == from_folder
    out = tmp_path / "sr.dcm"
    r = cli("dicom", "sr", url, "--center", "0,0,40", "--radius-mm", "6", "--out", str(out), "--stow", orthanc)
    assert r.returncode == 0 and "stored on" in r.stdout, r.stderr
    sr = pydicom.dcmread(out)
    from dicomweb_client.api import DICOMwebClient

    stored = DICOMwebClient(url=orthanc).search_for_instances(study_instance_uid=made["study"],
                                                               series_instance_uid=sr.SeriesInstanceUID)
    assert len(stored) == 1
    back = DICOMwebClient(url=orthanc).retrieve_instance(made["study"], sr.SeriesInstanceUID, sr.SOPInstanceUID)
    group = hd.sr.Comprehensive3DSR.from_dataset(back).content.get_volumetric_roi_measurement_groups()[0]
    assert {m.name.meaning: m.value for m in group.get_measurements()}["Mean"] == pytest.approx(1300.0)


def test_dicomweb_errors_say_what_the_server_said(orthanc, cli):  # noqa: F811
    r = cli("dicom", "roi", f"{orthanc}/studies/1.2.3/series/4.5.6", "--center", "0,0,0", "--radius-mm", "5")
    assert r.returncode == 2 and ("no such series" in r.stderr or "no instances" in r.stderr)
    r = cli("dicom", "roi", "http://127.0.0.1:9/dicom-web/studies/1.2/series/3.4", "--center", "0,0,0",
            "--radius-mm", "5")
    assert r.returncode == 2 and "cannot be reached" in r.stderr


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm"])
def test_the_fast_pixel_path_gives_what_pydicom_gives(name):
    from spinemets.dicom.series import _raw_pixels

    ds = pydicom.dcmread(get_testdata_file(name))
    raw = _raw_pixels(ds, int(ds.Rows), int(ds.Columns))
    if ds.BitsStored != ds.BitsAllocated:
        assert raw is None  # masked bits: pydicom's handler reads them
    else:
        assert raw is not None and np.array_equal(raw, ds.pixel_array)


def test_slices_with_different_rescales_are_each_rescaled(tmp_path):
    write_series(tmp_path / "s", np.full((4, 16, 16), 400.0), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    f = tmp_path / "s" / "img0002.dcm"
    ds = pydicom.dcmread(f)
    ds.RescaleSlope, ds.RescaleIntercept = 4, -800
    ds.PixelData = np.full((16, 16), 300, dtype=np.int16).tobytes()  # 300 * 4 - 800 = 400
    ds.save_as(f)
    volume = load_folder(tmp_path / "s")
    assert volume.stored.dtype == np.float32 and (volume.slope, volume.intercept) == (1.0, 0.0)
    assert np.all(volume.array == 400.0)
    assert sphere(volume, (7.5, 7.5, 3.0), 4.0).sd == 0.0
    same = load_folder(tmp_path / "s").values((slice(0, 1),))
    assert np.all(same == 400.0)


def test_reading_datasets_never_changes_them(ct):
    from spinemets.dicom.series import from_datasets

    datasets = [pydicom.dcmread(f) for f in sorted(ct[0].iterdir())]
    first = from_datasets(datasets)
    assert all("PixelData" in d for d in datasets)
    assert np.array_equal(from_datasets(datasets).stored, first.stored)


# --- REST: DICOMweb series on an allowed server ------------------------------------------------------------------------

def test_rest_measures_a_series_on_an_allowed_dicomweb_server_and_returns_the_sr(  # noqa: F811
        orthanc, ct, monkeypatch, db_url, store):
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app
    from spinemets.store.models import AuditEntry
    from tests.store_support import add_token, add_user

    folder, made = ct
    upload(orthanc, folder)
    url = f"{orthanc}/studies/{made['study']}/series/{made['series']}"
    monkeypatch.setenv("SPINEMETS_DICOMWEB_SERVERS", f"https://pacs.example.org/dicom-web,{orthanc}")
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    add_user(store, "alice")
    client = TestClient(create_app())
    body = {"series": url, "center": [0, 0, 40], "radius_mm": 6}
    anonymous = client.post("/api/v1/dicom/roi", json=body)
    assert anonymous.status_code == 401  # the patient's images: signed-in clinicians only
    client.headers["authorization"] = f"Bearer {add_token(store, 'alice')}"
    r = client.post("/api/v1/dicom/roi", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    with store.session() as s:
        assert [e.actor for e in s.query(AuditEntry) if e.object_type == "dicom_series"] == ["alice"]
    data = r.json()
    assert data["measurement"]["rois"]["series"]["mean"] == pytest.approx(1300.0)
    assert data["measurement"]["interpretation"]["values"]["ct_max_hu"] == 1300.0 and "Decision support" in data["disclaimer"]
    r = client.post("/api/v1/dicom/sr", json={"series": url, "center": [0, 0, 40], "radius_mm": 6, "store": True})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    sr = pydicom.dcmread(__import__("io").BytesIO(r.content))
    assert sr.StudyInstanceUID == made["study"] and sr.Modality == "SR"
    from dicomweb_client.api import DICOMwebClient

    assert DICOMwebClient(url=orthanc).search_for_instances(study_instance_uid=made["study"],
                                                             series_instance_uid=sr.SeriesInstanceUID)
    # a server the site does not allow is never contacted; a malformed request names its field
    r = client.post("/api/v1/dicom/roi", json={"series": "http://10.0.0.1/dicom-web/studies/1.2/series/3.4",
                                               "center": [0, 0, 40], "radius_mm": 6})
    assert r.status_code == 422 and r.json()["field"] == "series" and "not one this site allows" in r.json()["detail"]
    r = client.post("/api/v1/dicom/roi", json={"series": url, "center": [0, 0], "radius_mm": 6})
    assert r.status_code == 422 and "center" in r.json()["detail"]
    r = client.post("/api/v1/dicom/roi", json={"series": url, "center": [0, 0, 400], "radius_mm": 6})
    assert r.status_code == 422 and "outside the volume" in r.json()["detail"]
    # an allowed server that is down: the server's failure (502), not the caller's
    monkeypatch.setenv("SPINEMETS_DICOMWEB_SERVERS", "http://127.0.0.1:9/dicom-web")
    r = client.post("/api/v1/dicom/roi", json={"series": "http://127.0.0.1:9/dicom-web/studies/1.2/series/3.4",
                                               "center": [0, 0, 0], "radius_mm": 5})
    assert r.status_code == 502 and "cannot be reached" in r.json()["detail"]


# --- vertebral heights ------------------------------------------------------------------------------------------------

WEDGE = {"anterior_superior": (0, 10, 12), "anterior_inferior": (0, 10, 0), "middle_superior": (0, 0, 20),
         "middle_inferior": (0, 0, 0), "posterior_superior": (0, -10, 24), "posterior_inferior": (0, -10, 0)}


@pytest.mark.parametrize("reference, loss, grade, collapse", [
    (None, None, None, None),            # no reference: heights and ratios only, nothing guessed
    ([30.0], 60.0, "3", "gt50"),
    ([24.0], 50.0, "3", None),           # exactly 50%: between the SINS categories, left open
    ([16.0], 25.0, "between 1 and 2", "lt50"),
    ([14.0, 16.0], 20.0, "between 0 and 1", None),  # on the first Genant boundary: not yet a fracture, left open
    ([13.0], 7.7, "0", None),             # under 20%: not a fracture by Genant; none vs involved: open
])
def test_vertebral_heights(reference, loss, grade, collapse):
    from spinemets.dicom.height import vertebral_height

    r = vertebral_height(WEDGE, reference)
    assert r.heights_mm == {"anterior": 12.0, "middle": 20.0, "posterior": 24.0}
    assert r.ratios == {"anterior_to_posterior": 0.5, "middle_to_posterior": 0.833}
    assert (r.loss_percent, r.genant_grade, r.sins_collapse) == (loss, grade, collapse)
    if loss is not None:
        assert r.draft and any("later editorial" in n for n in r.notes)


def test_vertebral_height_errors_and_cli(cli):
    from spinemets.dicom.height import vertebral_height

    with pytest.raises(SeriesError, match="posterior_inferior are missing"):
        vertebral_height({k: v for k, v in WEDGE.items() if k != "posterior_inferior"})
    with pytest.raises(SeriesError, match="height is zero"):
        vertebral_height({**WEDGE, "anterior_inferior": WEDGE["anterior_superior"]})
    with pytest.raises(SeriesError, match="positive numbers"):
        vertebral_height(WEDGE, [-3.0])
    args = [a for k, v in WEDGE.items() for a in ("--point", f"{k}={v[0]},{v[1]},{v[2]}")]
    r = cli("dicom", "height", *args, "--reference-mm", "30")
    assert r.returncode == 0 and "height loss: 60.0% of 30.0 mm; Genant grade 3; SINS collapse: more than 50% vertebral body collapse" in r.stdout
    r = cli("dicom", "height", *args[:-2])
    assert r.returncode == 2 and "posterior_inferior are missing" in r.stderr



# --- second review: geometry, damaged input and clinical mix-ups --------------------------------------------------

def _sagittal(tmp_path, name="sag", tilt_mm=0.0, reverse=False):
    """A sagittal MR-like stack: anisotropic pixels (0.5 mm between rows, 1.0 mm between columns), a non-square
    image (30 rows x 50 columns), orientation rows along +y and columns along -z, slices along x (3 mm); one bright
    voxel at known indices."""
    from pydicom.uid import MRImageStorage, generate_uid

    from tests.dicom_phantoms import _dataset

    folder = tmp_path / name
    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for n in range(8):
        k = 7 - n if reverse else n
        image = np.zeros((30, 50))
        if k == 5:
            image[12, 20] = 1000.0  # row 12, column 20
        position = (10.0 + 3.0 * k, -40.0 + tilt_mm * k, 60.0)
        ds = _dataset(MRImageStorage, "MR", 30, 50, (1.0, 0.5, 3.0), position, (0, 1, 0, 0, 0, -1), image, 1.0, 0.0,
                      study, series, frame, n + 1, "sagittal")
        ds.save_as(folder / f"s{n}.dcm", enforce_file_format=True)
    return folder


def test_a_sagittal_anisotropic_non_square_stack_maps_its_voxels_exactly(tmp_path):
    volume = load_folder(_sagittal(tmp_path, reverse=True))
    assert volume.shape == (8, 30, 50) and np.allclose(volume.spacing, (1.0, 0.5, 3.0))
    # column 20 along +y at 1.0 mm, row 12 along -z at 0.5 mm; the normal (rows x columns) is -x, so the slices run
    # from x = 31 down in 3 mm steps and the bright slice (x = 25) is the third
    assert np.allclose(volume.to_patient([20, 12, 2]), (25.0, -20.0, 54.0))
    assert circle(volume, (25.0, -20.0, 54.0), 0.3).max == 1000.0


def test_a_tilted_stack_is_refused(tmp_path):
    with pytest.raises(SeriesError, match="not stacked along the normal"):
        load_folder(_sagittal(tmp_path, tilt_mm=1.0))


def test_a_damaged_file_is_never_dropped_silently(ct, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(ct[0], folder)
    last = sorted(folder.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:200])  # the preamble and a broken header
    with pytest.raises(SeriesError, match="damaged DICOM file"):
        load_folder(folder)


def test_slices_storing_pixels_differently_and_a_bad_number_are_refused(tmp_path):
    write_series(tmp_path / "s", np.full((4, 16, 16), 400.0), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    f = tmp_path / "s" / "img0001.dcm"
    ds = pydicom.dcmread(f)
    ds.PixelRepresentation = 0
    ds.save_as(f)
    with pytest.raises(SeriesError, match="store their pixels differently"):
        load_folder(tmp_path / "s")
    ds.PixelRepresentation = 1
    del ds.RescaleSlope
    ds.add_new(0x00281053, "LO", "abc")  # RescaleSlope as text that is no number
    ds.save_as(f)
    with pytest.raises(SeriesError, match=r"rescale slope \(RescaleSlope\) of .* is not a number"):
        load_folder(tmp_path / "s")


def test_rois_past_the_edge_or_too_large_are_refused_and_a_circle_is_drawn_on_its_slice(ct, tmp_path):
    volume = load_folder(ct[0])
    with pytest.raises(SeriesError, match="past the edge of the volume"):
        sphere(volume, (0, 0, 1), 4.0)  # the first slice is at z = 0
    with pytest.raises(SeriesError, match="at most 50 mm"):
        sphere(volume, (0, 0, 40), 60.0)
    flat = circle(volume, (0, 0, 40.9), 5.0)  # measured on the slice at z = 40, drawn there
    assert flat.center_mm[2] == pytest.approx(40.0) and flat.volume_mm3 is None and flat.slice_index == 20
    assert flat.area_mm2 == pytest.approx(flat.n * 0.8 * 0.8)
    from spinemets.dicom.sr import measurement_report

    sr = hd.sr.Comprehensive3DSR.from_dataset(measurement_report(volume, measure.roi(volume, (0, 0, 40.9), 5.0,
                                                                                      "circle")))
    group = sr.content.get_planar_roi_measurement_groups()[0]
    assert {m.name.meaning for m in group.get_measurements()} == {"Mean", "Maximum", "Standard Deviation", "Area"}
    assert np.allclose(group.roi.value[:, 2], 40.0)  # every point of the ellipse on the measured slice


def test_mr_measures_refuse_mix_ups(tmp_path, ct):
    ip, op = _mr_pair(tmp_path, 1000.0, 700.0)
    with pytest.raises(SeriesError, match="same series was given as in-phase and opposed-phase"):
        measure.chemical_shift(ip, ip, (0.0, 0.0, 20.0), 5.0)
    with pytest.raises(SeriesError, match="not an MR ADC map"):
        measure.adc(load_folder(ct[0]), (0, 0, 40), 4.0, "1e-6 mm2/s")
    values = np.full((6, 32, 32), 0.8)
    write_series(tmp_path / "adc", values, modality="MR", spacing=(1.5, 1.5, 5.0), origin=(-24.0, -24.0, 0.0),
                 slope=0.001)
    with pytest.raises(SeriesError, match="check the unit"):  # a map in 10^-3 declared as 10^-6
        measure.adc(load_folder(tmp_path / "adc"), (0.0, 0.0, 12.5), 4.0, "1e-6 mm2/s")


def test_a_roi_written_as_seg_reads_back_as_the_same_roi(ct, tmp_path, cli):
    folder, _ = ct
    seg = tmp_path / "seg.dcm"
    r = cli("dicom", "seg", str(folder), "--center", "0,0,40", "--radius-mm", "6", "--out", str(seg))
    assert r.returncode == 0, r.stderr
    written = hd.seg.segread(seg)
    assert written.SegmentSequence[0].SegmentLabel == "spinemets ROI"
    as_mask = json.loads(cli("dicom", "roi", str(folder), "--seg", str(seg), "--json").stdout)["rois"]["series"]
    as_sphere = json.loads(cli("dicom", "roi", str(folder), "--center", "0,0,40", "--radius-mm", "6",
                               "--json").stdout)["rois"]["series"]
    assert as_mask["n"] == as_sphere["n"] and as_mask["mean"] == as_sphere["mean"] == pytest.approx(1300.0)
    assert as_mask["shape"] == "mask" and np.allclose(as_mask["center_mm"], (0, 0, 40), atol=0.01)
    r = cli("dicom", "roi", str(folder), "--seg", str(seg), "--segment", "2")
    assert r.returncode == 2 and "no segment 2" in r.stderr
    r = cli("dicom", "roi", str(folder))
    assert r.returncode == 2 and "give the ROI" in r.stderr
    other = tmp_path / "other"
    ct_spheres(other, [BONE_ISLAND], shape=(4, 32, 32))
    r = cli("dicom", "roi", str(other), "--seg", str(seg))
    assert r.returncode == 2 and "another frame of reference" in r.stderr


# --- slices read when first used --------------------------------------------------------------------------------------

def test_a_roi_reads_only_the_slices_it_crosses_and_gives_what_reading_everything_gives(ct):
    folder, made = ct
    lazy = load_folder(folder)
    assert int(lazy._loaded.sum()) == 1  # opening reads the headers and one slice (to check it decodes)
    stats = sphere(lazy, [0, 0, 40], 6)
    assert int(lazy._loaded.sum()) <= 1 + 7  # the sphere crosses 7 slices 2 mm apart
    assert stats.mean == 1300.0 and stats.n == _expected(made["values"]).size
    everything = load_folder(folder)
    assert np.array_equal(everything.values(), made["values"])  # every slice, against the phantom's own values
    assert everything.reader is None and sphere(everything, [0, 0, 40], 6) == stats
    for k in (0, 7, 39):  # slices read one at a time, in any order, are the phantom's slices
        assert np.array_equal(load_folder(folder).values(k), made["values"][k])
    with pytest.raises(SeriesError, match="true or false for every voxel"):
        lazy.masked_values(np.ones(lazy.shape, dtype=np.uint8))


def test_slices_read_from_many_threads_at_once_are_each_read_right(ct):
    from concurrent.futures import ThreadPoolExecutor

    volume = load_folder(ct[0])
    centres = [[0, 0, z] for z in range(10, 70, 4)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda c: sphere(volume, c, 6), centres * 3))
    alone = [sphere(load_folder(ct[0]), c, 6) for c in centres]
    assert together == alone * 3


def test_a_file_cut_short_is_said_when_the_series_is_opened(ct, tmp_path):
    folder = tmp_path / "cut"
    shutil.copytree(ct[0], folder)
    last = sorted(folder.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:-1000])  # the header intact, the pixel data cut short
    with pytest.raises(SeriesError, match="its pixel data is cut short"):
        load_folder(folder)


def test_a_file_changed_or_removed_after_opening_is_never_read_silently(ct, tmp_path):
    import os

    folder = tmp_path / "changing"
    shutil.copytree(ct[0], folder)
    volume = load_folder(folder)
    files = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f for f in folder.iterdir()}
    middle = files[volume.instances[20].sop_instance_uid]
    stat = middle.stat()
    other = files[volume.instances[0].sop_instance_uid]
    shutil.copy(other, folder / "replacement")  # another image put in its place (cp -p; mv), same size and times
    os.replace(folder / "replacement", middle)
    os.utime(middle, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(SeriesError, match="has changed since the series was opened: open the series again"):
        sphere(volume, [0, 0, 40], 6)
    files[volume.instances[30].sop_instance_uid].unlink()
    with pytest.raises(SeriesError, match="can no longer be read"):
        sphere(volume, [0, 0, 60], 4)


# --- pixels outside the scanned field ------------------------------------------------------------------------------

def _padded(tmp_path, name, intercepts=None):
    """A CT of 40 HU inside a circle of 40 mm radius and padding outside it (stored -2000, as scanners mark the
    field of view), optionally each slice with its own intercept."""
    import pydicom as _pydicom

    shape = (6, 128, 128)
    j, i = np.mgrid[0:128, 0:128]
    outside = (-50 + 0.8 * i) ** 2 + (-50 + 0.8 * j) ** 2 > 40.0 ** 2
    values = np.full(shape, 40.0)
    values[:, outside] = -2000 - 1024.0  # stored -2000 with the intercept -1024
    folder = tmp_path / name
    write_series(folder, values, spacing=(0.8, 0.8, 2.0), origin=(-50.0, -50.0, 0.0), intercept=-1024.0)
    for n, f in enumerate(sorted(folder.iterdir())):
        ds = _pydicom.dcmread(f)
        ds.add_new(0x00280120, "SS", -2000)  # PixelPaddingValue, signed as the pixels are
        if intercepts:
            ds.RescaleIntercept = intercepts[n]
        ds.save_as(f, enforce_file_format=True)
    return folder


@pytest.mark.parametrize("intercepts", [None, [-1024.0, -1000.0, -1024.0, -1000.0, -1024.0, -1000.0]])
def test_padding_outside_the_field_of_view_is_never_measured(tmp_path, intercepts):
    volume = load_folder(_padded(tmp_path, "padded", intercepts))
    inside = sphere(volume, [0, 0, 5], 4)
    assert np.isfinite(inside.mean) and inside.n > 0
    with pytest.raises(SeriesError, match=r"includes \d+ voxels outside the scanned field of view"):
        circle(volume, [-30, -30, 4], 8)  # a corner: past the 40 mm field
    low, high = volume.value_range()
    assert low > -2000 and high < 100  # the padding is not a value of the image
    assert np.isnan(volume.values(0)[0, 0]) and np.isnan(volume.array[0, 0, 0])


def test_a_modality_lut_is_refused_until_it_is_applied(tmp_path):
    from pydicom.dataset import Dataset as _Dataset
    from pydicom.sequence import Sequence as _Sequence

    folder = _padded(tmp_path, "lut")
    f = sorted(folder.iterdir())[2]
    ds = pydicom.dcmread(f)
    item = _Dataset()
    item.add_new(0x00283002, "US", [2, 0, 16])  # LUT Descriptor
    item.ModalityLUTType = "HU"
    item.add_new(0x00283006, "US", [0, 1])  # LUT Data
    ds.ModalityLUTSequence = _Sequence([item])
    ds.save_as(f, enforce_file_format=True)
    with pytest.raises(SeriesError, match="Modality LUT, which is not applied yet"):
        load_folder(folder)


def _philips(folder, scale):
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x0E, "FL", scale)
        ds.save_as(f, enforce_file_format=True)


@pytest.mark.parametrize("scales, refused", [((0.5, 0.5), False), ((0.5, 0.25), True), ((0.5, None), True)])
def test_a_pair_the_scanner_scaled_differently_is_refused(tmp_path, scales, refused):
    """Philips MR images carry a private scale slope besides the DICOM rescale: two series with different ones do
    not compare by their stored values (the ratio would be off by their quotient)."""
    _mr_pair(tmp_path, 500.0, 250.0)
    for name, scale in zip(("ip", "op"), scales):
        if scale is not None:
            _philips(tmp_path / name, scale)
    _pair_refused_or_half(tmp_path, "the scanner scaled the two series differently" if refused else None)


def _pair_refused_or_half(tmp_path, refusal):
    """The pair in tmp_path/ip and /op is refused with *refusal*, or (None) measures its 50 % drop."""
    ip, op = load_folder(tmp_path / "ip"), load_folder(tmp_path / "op")
    if refusal:
        with pytest.raises(SeriesError, match=refusal):
            measure.chemical_shift(ip, op, [0, 0, 16], 6)
    else:
        assert measure.chemical_shift(ip, op, [0, 0, 16], 6).derived["drop_percent"] == pytest.approx(50.0)


def _echo(folder, te, field=None, mhz=None):
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds.EchoTime = te
        if field is not None:
            ds.MagneticFieldStrength = field
        if mhz is not None:
            ds.ImagingFrequency = mhz
        ds.save_as(f, enforce_file_format=True)


@pytest.mark.parametrize("in_te, op_te, field, mhz, outcome", [
    (4.6, 2.3, 1.5, None, "agree with the series given"),          # 1.5 T: 223 Hz, in phase every 4.5 ms
    (2.3, 4.6, 1.5, None, "say the two series are swapped"),       # the same pair given the wrong way round
    (2.3, 4.6, 3.0, None, "both echo times (2.3 and 4.6 ms) are in phase"),  # at 3 T both are in phase
    (2.39, 1.19, 3.0, 123.25, "agree with the series given"),      # a nominal 3 T magnet at 2.89 T (its frequency)
    (4.0, 4.0, 1.5, None, "cannot tell which is in phase"),        # a spin-echo Dixon pair: one echo time
    (3.4, 2.3, 1.5, None, "could not confirm the order"),          # neither near a whole nor a half cycle
    (4.6, 2.3, None, None, "were not checked"),                    # no field strength stated
])
def test_the_echo_times_check_the_order_of_a_chemical_shift_pair(tmp_path, in_te, op_te, field, mhz, outcome):
    _mr_pair(tmp_path, 500.0, 250.0)
    _echo(tmp_path / "ip", in_te, field, mhz)
    _echo(tmp_path / "op", op_te, field, mhz)
    ip, op = load_folder(tmp_path / "ip"), load_folder(tmp_path / "op")
    if "swapped" in outcome or "both echo times" in outcome:
        with pytest.raises(SeriesError, match=outcome.replace("(", r"\(").replace(")", r"\)")):
            measure.chemical_shift(ip, op, [0, 0, 16], 6)
        return
    m = measure.chemical_shift(ip, op, [0, 0, 16], 6)
    assert outcome in m.note and m.derived["drop_percent"] == pytest.approx(50.0)
    assert measure.describe(m)[-1] == m.note  # said with the measurement, once


# --- DICOMweb tokens ----------------------------------------------------------------------------------------------

def test_tokens_per_server_reach_only_their_server(monkeypatch):
    from spinemets.dicom.dicomweb import TOKEN_ENV, TOKENS_ENV, client, token_for

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKENS_ENV, '{"https://pacs-a.example.org/dicom-web/": "token-a", '
                                   '"http://127.0.0.1:8042/dicom-web": "token-local"}')
    assert token_for("https://pacs-a.example.org/dicom-web") == ("token-a", TOKENS_ENV)
    assert token_for("https://pacs-b.example.org/dicom-web")[0] is None  # not listed: no token at all
    headers = client("https://pacs-a.example.org/dicom-web")._session.headers
    assert headers["Authorization"] == "Bearer token-a"
    assert "Authorization" not in client("https://pacs-b.example.org/dicom-web")._session.headers
    assert client("http://127.0.0.1:8042/dicom-web")._session.headers["Authorization"] == "Bearer token-local"
    monkeypatch.setenv(TOKENS_ENV, '{"http://pacs-c.example.org/dicom-web": "token-c"}')
    with pytest.raises(SeriesError, match="not https: the token would cross the network unencrypted"):
        client("http://pacs-c.example.org/dicom-web")
    for bad in ("not json", '["token"]', '{"https://x.example.org": 3}', '{"https://x.example.org": ""}'):
        monkeypatch.setenv(TOKENS_ENV, bad)
        with pytest.raises(SeriesError, match="must be a JSON object from each DICOMweb root to its token"):
            token_for("https://x.example.org")
    monkeypatch.setenv(TOKENS_ENV, '{"https://x.example.org": "t"}')
    monkeypatch.setenv(TOKEN_ENV, "shared")
    with pytest.raises(SeriesError, match="both .* are set: set one"):
        token_for("https://x.example.org")
    monkeypatch.delenv(TOKENS_ENV)
    assert token_for("https://any.example.org") == ("shared", TOKEN_ENV)  # the single token: every server


def test_a_padding_value_written_unsigned_for_signed_pixels_is_the_same_stored_value(tmp_path):
    folder = _padded(tmp_path, "unsigned")
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        del ds[0x00280120]
        ds.add_new(0x00280120, "US", 65536 - 2000)  # -2000 in the pixels' 16 bits, written unsigned
        ds.save_as(f, enforce_file_format=True)
    volume = load_folder(folder)
    assert volume.padding == (-2000.0, -2000.0) and volume.value_range()[0] > -2000
    with pytest.raises(SeriesError, match="outside the scanned field of view"):
        circle(volume, [-30, -30, 4], 8)


def test_a_deflated_series_is_read(ct, tmp_path):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    folder = tmp_path / "deflated"
    folder.mkdir()
    for f in sorted(ct[0].iterdir()):
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(folder / f.name, enforce_file_format=True)
    assert sphere(load_folder(folder), [0, 0, 40], 6) == sphere(load_folder(ct[0]), [0, 0, 40], 6)


@pytest.mark.parametrize("units, refused", [(None, True), ("SI", False)])
def test_an_mr_pair_rescaled_differently_compares_only_with_a_stated_common_unit(tmp_path, units, refused):
    ip, op = np.full((10, 64, 64), 400.0), np.full((10, 64, 64), 380.0)
    ip[:, 20:44, 20:44], op[:, 20:44, 20:44] = 500.0, 250.0
    first = write_series(tmp_path / "ip", ip, modality="MR", spacing=(1.0, 1.0, 4.0), origin=(-32.0, -32.0, 0.0))
    write_series(tmp_path / "op", op, modality="MR", spacing=(1.0, 1.0, 4.0), origin=(-32.0, -32.0, 0.0),
                 frame=first["frame"], study=first["study"], slope=2.0)
    if units:
        for name in ("ip", "op"):
            for f in sorted((tmp_path / name).iterdir()):
                ds = pydicom.dcmread(f)
                ds.RescaleType = units
                ds.save_as(f, enforce_file_format=True)
    _pair_refused_or_half(tmp_path, "rescaled differently .* state no common unit" if refused else None)


def test_a_field_strength_in_gauss_is_not_read_as_tesla(tmp_path):
    _mr_pair(tmp_path, 500.0, 250.0)
    _echo(tmp_path / "ip", 4.6, 15000)
    _echo(tmp_path / "op", 2.3, 15000)
    m = measure.chemical_shift(load_folder(tmp_path / "ip"), load_folder(tmp_path / "op"), [0, 0, 16], 6)
    assert "were not checked" in m.note and "in tesla" in m.note


# --- final read-through: whose images, and CT without its rescale ------------------------------------------------

@pytest.mark.parametrize("birth, age_text, child", [("20150101", None, True), ("19600101", None, False),
                                                    ("19600101", "010Y", True), (None, "018M", True), (None, None, None)])
def test_a_childs_images_say_the_cut_offs_populations_must_be_checked(tmp_path, birth, age_text, child):
    ct_spheres(tmp_path / "ct", [((0.0, 0.0, 10.0), 4.0, 1300.0)], shape=(10, 32, 32), spacing=(1.0, 1.0, 2.0),
               origin=(-16.0, -16.0, 0.0))
    for f in sorted((tmp_path / "ct").iterdir()):
        ds = pydicom.dcmread(f)
        if birth is None:
            del ds.PatientBirthDate
        else:
            ds.PatientBirthDate = birth
        if age_text:
            ds.PatientAge = age_text
        ds.save_as(f, enforce_file_format=True)
    volume = load_folder(tmp_path / "ct")
    m = measure.roi(volume, [0, 0, 10], 3)
    if child:
        assert "check that the study populations of the cut-offs" in m.note and "include children" in m.note
        assert measure.describe(m)[-1] == m.note
    else:
        assert m.note is None  # an adult, or no age in the images: nothing said
    assert m.interpretation is not None  # the measurement itself is given either way


def test_a_ct_without_its_rescale_is_refused(ct, tmp_path):
    folder = tmp_path / "norescale"
    shutil.copytree(ct[0], folder)
    f = sorted(folder.iterdir())[3]
    ds = pydicom.dcmread(f)
    del ds.RescaleIntercept
    ds.save_as(f, enforce_file_format=True)
    with pytest.raises(SeriesError, match="has no rescale slope or intercept: its Hounsfield units are not known"):
        load_folder(folder)
    with pytest.raises(SeriesError, match="its Hounsfield units are not known"):
        load_folder(folder, fast=False)
