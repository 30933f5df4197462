"""Polygon ROIs and RT Structure Sets (issue 14, "a polygon, or a DICOM SEG or RTSTRUCT mask"): pixels inside a
polygon drawn on one image (even-odd rule, checked against an independent half-plane test for convex polygons by a
hypothesis property), an L-shape and a hole counted by hand, a structure set written here and pydicom's own bundled
structure set (written by others) on a phantom in its frame of reference, the SR of a polygon read back, and every
error with its message."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from spinemets.dicom import measure
from spinemets.dicom.roi import polygon, polygon_mask
from spinemets.dicom.rtstruct import RTSTRUCT_CLASS, read_mask
from spinemets.dicom.seg import mask_stats
from spinemets.dicom.series import SeriesError, load_folder
from tests.dicom_phantoms import ct_spheres, new_dataset, write_series

BONE_ISLAND = ((0.0, 0.0, 40.0), 10.0, 1300.0)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regions-ct") / "series"
    made = ct_spheres(folder, [BONE_ISLAND], slope=2.0, intercept=-1024.0, reverse=True, background=40.0)
    return folder, made, load_folder(folder)


def square(half, z=40.0, cx=0.0, cy=0.0):
    return [[cx - half, cy - half, z], [cx + half, cy - half, z], [cx + half, cy + half, z], [cx - half, cy + half, z]]


# --- polygons ---------------------------------------------------------------------------------------------------------

def test_a_square_inside_the_bone_island_counts_its_pixel_centres(ct):
    volume = ct[2]
    stats = polygon(volume, square(4.0))
    # pixel centres at -50 + 0.8 i: inside (-4, 4) are i = 58..67 (10 columns) and the same 10 rows
    assert (stats.n, stats.mean, stats.sd, stats.shape) == (100, 1300.0, 0.0, "polygon")
    assert stats.area_mm2 == pytest.approx(100 * 0.64) and stats.slice_index == 20 and stats.volume_mm3 is None
    assert stats.center_mm == pytest.approx([0.0, 0.0, 40.0], abs=1e-9) and stats.radius_mm is None
    closed = polygon(volume, square(4.0) + square(4.0)[:1])  # a ring that repeats its first corner: the same
    assert closed.n == 100 and len(closed.points_mm) == 4


def test_an_l_shape_and_the_background_around_the_sphere(ct):
    volume = ct[2]
    # an L of two 8 x 4 mm arms (concave): 10 x 5 + 5 x 5 pixel centres, well outside the sphere (background 40 HU)
    ell = [[20, 20, 40], [28, 20, 40], [28, 24, 40], [24, 24, 40], [24, 28, 40], [20, 28, 40]]
    stats = polygon(volume, ell)
    assert stats.n == 50 + 25 and stats.mean == 40.0
    text = "\n".join(measure.describe(measure.roi(volume, None, None, "polygon", points=ell)))
    assert "polygon of 6 corners on slice 21 (image 20) centred at" in text and "75 voxels" in text


def _hull(points):
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - \
                    (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(-30, 30), st.floats(-30, 30)), min_size=3, max_size=9))
def test_convex_polygons_match_an_independent_half_plane_test(ct, corners):
    volume = ct[2]
    hull = _hull([(round(x, 3), round(y, 3)) for x, y in corners])
    if len(hull) < 3:
        return
    area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(hull, hull[1:] + hull[:1])))
    if area < 1.0:
        return
    xs = -50 + 0.8 * np.arange(128)
    X, Y = np.meshgrid(xs, xs)  # rows (y) by columns (x)
    inside = np.ones_like(X, dtype=bool)
    margin = np.full_like(X, np.inf)
    for (x1, y1), (x2, y2) in zip(hull, hull[1:] + hull[:1]):  # counter-clockwise: inside is to the left
        cross = (x2 - x1) * (Y - y1) - (y2 - y1) * (X - x1)
        inside &= cross > 0
        margin = np.minimum(margin, np.abs(cross) / np.hypot(x2 - x1, y2 - y1))
    try:
        box, mask, _ = polygon_mask(volume, [[x, y, 40.0] for x, y in hull])
    except SeriesError as exc:
        assert not inside.any() and "no pixel centre" in exc.message
        return
    full = np.zeros((128, 128), dtype=bool)
    full[box[1], box[2]] = mask[0]
    clear = margin > 1e-6  # a centre on an edge may go either way
    assert np.array_equal(full[clear], inside[clear])


@pytest.mark.parametrize("points, words", [
    ([[0, 0, 40], [4, 0, 40]], "3 to 1000 corners, not 2"),
    ([[0, 0, 40], [4, 0, 40], [4, 4, 44]], "do not lie on one image"),
    ([[0, 0, 40], [4, 0], [4, 4, 40]], "three numbers"),
    ([[0, 0, 40], [60, 0, 40], [60, 4, 40]], "past the edge of the image"),
    ([[0, 0, 200], [4, 0, 200], [4, 4, 200]], "on no image of the series"),
    ([[0.1, 0.1, 40], [0.3, 0.1, 40], [0.3, 0.3, 40]], "holds no pixel centre"),
    ([[0, 0, 40], [float("nan"), 0, 40], [4, 4, 40]], "three numbers"),
])
def test_bad_polygons_are_refused_with_the_reason(ct, points, words):
    with pytest.raises(SeriesError) as err:
        polygon(ct[2], points)
    assert words in err.value.message and err.value.field == "points"


def test_the_polygon_from_the_command_line_and_its_sr(ct, cli, tmp_path):
    folder = str(ct[0])
    corners = "-4,-4,40;4,-4,40;4,4,40;-4,4,40"
    r = cli("dicom", "roi", folder, f"--polygon={corners}", "--json")  # a first corner with a minus: --polygon=
    assert r.returncode == 0, r.stderr
    import json

    data = json.loads(r.stdout)
    assert data["rois"]["series"]["n"] == 100 and data["derived"]["mean_hu"] == 1300.0
    r = cli("dicom", "roi", folder, f"--polygon={corners}", "--center", "0,0,40", "--radius-mm", "5")
    assert r.returncode == 2 and "either as --polygon or as --center" in r.stderr
    r = cli("dicom", "roi", folder, "--polygon", "1,2,3;4,5,6")
    assert r.returncode == 2 and "at least three corners" in r.stderr
    out = tmp_path / "polygon-sr.dcm"
    r = cli("dicom", "sr", folder, f"--polygon={corners}", "--out", str(out))
    assert r.returncode == 0, r.stderr
    group = hd.sr.srread(out).content.get_planar_roi_measurement_groups()[0]
    region = group.roi
    assert region.GraphicType == "POLYGON"
    ring = np.array(region.GraphicData, dtype=float).reshape(-1, 3)
    assert len(ring) == 5 and np.allclose(ring[0], ring[-1]) and np.allclose(ring[:4], square(4.0))
    values = {m.name.meaning: m.value for m in group.get_measurements()}
    assert values["Mean"] == pytest.approx(1300.0) and values["Area"] == pytest.approx(64.0)


# --- RT Structure Sets --------------------------------------------------------------------------------------------------

def write_rtstruct(path, frame, structures, study=None):
    """An RT Structure Set: structures = [(number, name, [(type, [[x, y, z], ...]), ...]), ...]."""
    ds = new_dataset(RTSTRUCT_CLASS, "RTSTRUCT")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), generate_uid()
    ds.StructureSetLabel = "tests"
    rois, contours = [], []
    for number, name, items in structures:
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        rois.append(roi)
        c = Dataset()
        c.ReferencedROINumber = number
        sequence = []
        for kind, points in items:
            item = Dataset()
            item.ContourGeometricType = kind
            item.NumberOfContourPoints = len(points)
            item.ContourData = [float(v) for p in points for v in p]
            sequence.append(item)
        c.ContourSequence = DicomSequence(sequence)
        contours.append(c)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_structure_with_a_hole_over_three_slices(ct, cli, tmp_path):
    folder, made, volume = ct
    lesion = [("CLOSED_PLANAR", square(8.0, z)) for z in (38.0, 40.0, 42.0)] + [("CLOSED_PLANAR", square(4.0, 40.0))]
    path = write_rtstruct(tmp_path / "rs.dcm", made["frame"], [(1, "Lesion", lesion),
                                                               (2, "Cord", [("CLOSED_PLANAR", square(2.2, 60.0))])])
    mask, name = read_mask(volume, path, "lesion")  # names match regardless of case
    assert name == "Lesion"
    # 20 x 20 centres inside (-8, 8) on each of three slices, less the 10 x 10 of the hole on the middle one
    assert int(mask.sum()) == 3 * 400 - 100 and not mask[20, 64, 64] and mask[19, 64, 64]
    stats = mask_stats(volume, mask)
    assert stats.shape == "mask" and stats.radius_mm is None and stats.n == 1100
    r = cli("dicom", "roi", str(folder), "--rtstruct", str(path))
    assert r.returncode == 2 and "2 structures (1 (Lesion), 2 (Cord))" in r.stderr and "choose one" in r.stderr
    r = cli("dicom", "roi", str(folder), "--rtstruct", str(path), "--structure", "2")
    assert r.returncode == 0 and "mask centred at (0, 0, 60) mm" in r.stdout and "36 voxels" in r.stdout, r.stderr
    r = cli("dicom", "roi", str(folder), "--rtstruct", str(path), "--structure", "Spleen")
    assert r.returncode == 2 and "no structure named 'Spleen'" in r.stderr
    r = cli("dicom", "roi", str(folder), "--rtstruct", str(path), "--seg", str(path), "--structure", "1")
    assert r.returncode == 2 and "give one ROI" in r.stderr


@pytest.mark.parametrize("structures, words", [
    ([(1, "Lesion", [("POINT", [[0, 0, 40]])])], "is point, not a closed planar contour"),
    ([(1, "Lesion", [("OPEN_PLANAR", square(4.0))])], "is open planar, not a closed planar contour"),
    ([(1, "Lesion", [])], "Lesion has no contours"),
    ([(1, "Lesion", [("CLOSED_PLANAR", [[0, 0, 40], [4, 0, 41.5], [4, 4, 40]])])], "Lesion, contour 1: its corners "
                                                                                     "do not lie on one image"),
    ([(1, "Lesion", [("CLOSED_PLANAR", square(4.0)), ("CLOSED_PLANAR", square(4.0))])], "encloses no voxel"),
])
def test_bad_structures_are_refused_with_the_reason(ct, tmp_path, structures, words):
    folder, made, volume = ct
    path = write_rtstruct(tmp_path / "rs.dcm", made["frame"], structures)
    with pytest.raises(SeriesError) as err:
        read_mask(volume, path)
    assert words in err.value.message


def test_a_structure_set_of_another_frame_or_not_one_at_all(ct, tmp_path):
    volume = ct[2]
    other = write_rtstruct(tmp_path / "other.dcm", generate_uid(), [(1, "Lesion", [("CLOSED_PLANAR", square(4.0))])])
    with pytest.raises(SeriesError, match="another frame of reference"):
        read_mask(volume, other)
    with pytest.raises(SeriesError, match="not an RT Structure Set"):
        read_mask(volume, next(ct[0].iterdir()))
    with pytest.raises(SeriesError, match="no such file"):
        read_mask(volume, tmp_path / "missing.dcm")


def test_pydicoms_bundled_structure_set_on_a_phantom_in_its_frame(tmp_path):
    """A structure set written by others (pydicom's test file, without a preamble): its body outline is three
    400 x 300 mm rectangles at z = -200, -190, -180 mm; its isocentres are points."""
    path = get_testdata_file("rtstruct.dcm")
    frame = str(pydicom.dcmread(path, force=True).StructureSetROISequence[0].ReferencedFrameOfReferenceUID)
    xs = -210 + 4 * np.arange(111)
    values = np.broadcast_to(xs[None, None, :], (3, 81, 111)).astype(float)  # the value is the x coordinate
    write_series(tmp_path / "ct", values, spacing=(4.0, 4.0, 10.0), origin=(-210.0, -160.0, -200.0), frame=frame)
    volume = load_folder(tmp_path / "ct")
    mask, name = read_mask(volume, path, "patient")
    # centres strictly inside x in (-200, 200): 100 columns; y in (-150, 150): 75 rows; three slices
    assert name == "patient" and int(mask.sum()) == 3 * 100 * 75
    assert mask_stats(volume, mask).mean == pytest.approx(0.0, abs=1e-9)  # symmetric about x = 0
    with pytest.raises(SeriesError, match="is point, not a closed planar contour"):
        read_mask(volume, path, "Isocenter 1")


def test_a_centre_given_as_voxel_indices_is_the_same_region(ct, cli):
    import json

    folder = str(ct[0])
    by_mm = json.loads(cli("dicom", "roi", folder, "--center", "0,0,40", "--radius-mm", "6", "--json").stdout)
    r = cli("dicom", "roi", folder, "--voxel", "62.5,62.5,20", "--radius-mm", "6", "--json")  # (-50 + 0.8 i, ...)
    assert r.returncode == 0, r.stderr
    by_voxel = json.loads(r.stdout)
    assert by_voxel["rois"] == by_mm["rois"] and by_voxel["rois"]["series"]["center_mm"] == pytest.approx([0, 0, 40])
    r = cli("dicom", "roi", folder, "--voxel", "62.5,62.5,20", "--center", "0,0,40", "--radius-mm", "6")
    assert r.returncode == 2 and "in mm (--center) or as voxel indices (--voxel), not both" in r.stderr
    r = cli("dicom", "roi", folder, "--voxel", "62.5,62.5,90", "--radius-mm", "6")
    assert r.returncode == 2 and "outside the volume" in r.stderr


def test_heights_over_rest_with_their_words():
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app())
    points = {"anterior_superior": [0, 10, 12], "anterior_inferior": [0, 10, 0], "middle_superior": [0, 0, 20],
              "middle_inferior": [0, 0, 0], "posterior_superior": [0, -10, 24], "posterior_inferior": [0, -10, 0]}
    r = client.post("/api/v1/dicom/height", json={"points": points, "reference_mm": [30]})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["result"]["loss_percent"] == pytest.approx(60.0) and data["result"]["genant_grade"] == "3"
    assert "height loss: 60.0% of 30.0 mm; Genant grade 3; SINS collapse: more than 50% vertebral body collapse" in \
        data["summary"] and "Decision support" in data["disclaimer"]
    r = client.post("/api/v1/dicom/height", json={"points": {k: v for k, v in points.items() if k != "middle_inferior"}})
    assert r.status_code == 422 and "middle_inferior" in r.json()["detail"]
    r = client.post("/api/v1/dicom/height", json={"points": points, "reference_mm": [-3]})
    assert r.status_code == 422


# --- after review: edges through pixel centres, and how contours on one image combine -------------------------------

@pytest.mark.parametrize("i0, j0", [(10, 10), (37, 52), (61, 5), (100, 90)])
def test_a_square_through_pixel_centres_counts_the_same_wherever_it_is(ct, i0, j0):
    volume = ct[2]
    # corners on the centres of pixels (i0, j0) and (i0 + 3, j0 + 3): left and upper edges in, right and lower out
    corners = [volume.to_patient([i, j, 20]).tolist() for i, j in ((i0, j0), (i0 + 3, j0), (i0 + 3, j0 + 3),
                                                                    (i0, j0 + 3))]
    _, mask, _ = polygon_mask(volume, corners)
    assert int(mask.sum()) == 9


def test_a_square_through_pixel_centres_on_a_sagittal_stack(tmp_path):
    from tests.test_dicom import _sagittal

    volume = load_folder(_sagittal(tmp_path))
    for i0, j0, k in ((3, 4, 1), (20, 12, 5), (41, 20, 7)):
        corners = [volume.to_patient([i, j, k]).tolist() for i, j in ((i0, j0), (i0 + 3, j0), (i0 + 3, j0 + 3),
                                                                        (i0, j0 + 3))]
        _, mask, _ = polygon_mask(volume, corners)
        assert int(mask.sum()) == 9, (i0, j0, k)


def test_contours_on_one_image_add_up_apart_cut_holes_nested_and_partial_overlaps_are_refused(ct, tmp_path):
    folder, made, volume = ct
    apart = [("CLOSED_PLANAR", square(2.2, 40.0, -10.0)), ("CLOSED_PLANAR", square(2.2, 40.0, 10.0))]
    mask, _ = read_mask(volume, write_rtstruct(tmp_path / "a.dcm", made["frame"], [(1, "Two", apart)]))
    assert int(mask.sum()) == 2 * 5 * 6  # x in (-12.2, -7.8): 5 pixel centres (-11.6 to -8.4); y: 6 (-2.0 to 2.0)
    overlapping = [("CLOSED_PLANAR", square(4.0, 40.0, -2.0)), ("CLOSED_PLANAR", square(4.0, 40.0, 2.0))]
    with pytest.raises(SeriesError, match="partly overlap on one image"):
        read_mask(volume, write_rtstruct(tmp_path / "b.dcm", made["frame"], [(1, "Two", overlapping)]))
    xor = [("CLOSEDPLANAR_XOR", c[1]) for c in overlapping]  # DICOM's exclusive-or contours: the overlap drops out
    mask, _ = read_mask(volume, write_rtstruct(tmp_path / "c.dcm", made["frame"], [(1, "Xor", xor)]))
    assert int(mask.sum()) == 2 * 100 - 2 * 50
    island = [("CLOSED_PLANAR", square(8.0)), ("CLOSED_PLANAR", square(4.0)), ("CLOSED_PLANAR", square(2.2))]
    mask, _ = read_mask(volume, write_rtstruct(tmp_path / "d.dcm", made["frame"], [(1, "Ring", island)]))
    assert int(mask.sum()) == 400 - 100 + 36  # a ring around a hole with an island in it


def test_an_end_cap_around_no_pixel_a_long_contour_and_a_numberless_structure(ct, tmp_path):
    folder, made, volume = ct
    cap = [("CLOSED_PLANAR", square(4.0, 40.0)), ("CLOSED_PLANAR", [[0.1, 0.1, 42], [0.3, 0.1, 42], [0.3, 0.3, 42]])]
    mask, _ = read_mask(volume, write_rtstruct(tmp_path / "cap.dcm", made["frame"], [(1, "Cap", cap)]))
    assert int(mask.sum()) == 100  # the cap adds nothing and refuses nothing
    angles = np.linspace(0, 2 * np.pi, 1500, endpoint=False)
    ring = [[8.1 * np.cos(a), 8.1 * np.sin(a), 40.0] for a in angles]  # 1500 points: a traced contour
    mask, _ = read_mask(volume, write_rtstruct(tmp_path / "ring.dcm", made["frame"], [(1, "Traced", [
        ("CLOSED_PLANAR", ring)])]))
    assert int(mask.sum()) > 300
    path = write_rtstruct(tmp_path / "nonumber.dcm", made["frame"], [(1, "Lesion", [("CLOSED_PLANAR", square(4.0))])])
    rs = pydicom.dcmread(path)
    del rs.StructureSetROISequence[0].ROINumber
    rs.save_as(path, enforce_file_format=True)
    with pytest.raises(SeriesError, match="structure 1 of the set has no number"):
        read_mask(volume, path)


def test_a_contour_drawn_on_images_of_another_series_is_refused(ct, tmp_path):
    folder, made, volume = ct
    path = write_rtstruct(tmp_path / "other.dcm", made["frame"], [(1, "Lesion", [("CLOSED_PLANAR", square(4.0))])])
    rs = pydicom.dcmread(path)
    image = Dataset()
    image.ReferencedSOPClassUID, image.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.128", generate_uid()
    rs.ROIContourSequence[0].ContourSequence[0].ContourImageSequence = DicomSequence([image])
    rs.save_as(path, enforce_file_format=True)
    with pytest.raises(SeriesError, match="drawn on images of another series"):
        read_mask(volume, path)
    image.ReferencedSOPInstanceUID = volume.instances[20].sop_instance_uid  # this series' image: read
    rs.save_as(path, enforce_file_format=True)
    assert int(read_mask(volume, path)[0].sum()) == 100
