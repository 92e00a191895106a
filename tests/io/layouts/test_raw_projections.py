"""DXchange and NXtomo raw projections: preprocessing on read, the centre of rotation, lazy rows, units of angles."""

import h5py
import numpy as np
import pytest
from layout_files import simulate_scan, write_dxchange, write_nxtomo

from recon.errors import UserError
from recon.importing import import_layout
from recon.io.layouts import detect_layout, open_measurement
from recon.metrics import quality
from recon.pipeline import Request, compute

OFFSET = 6.3  # the rotation axis 6.3 columns right of the detector's middle


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    offset, centred = simulate_scan(center_offset=OFFSET, seed=1), simulate_scan(center_offset=0.0, seed=1)
    return {"offset": (write_dxchange(folder / "offset.h5", offset), offset),
            "centred": (write_dxchange(folder / "centred.h5", centred), centred),
            "nxtomo": (write_nxtomo(folder / "offset.nx", offset), offset)}


def fbp_psnr(path, scan, **read) -> tuple[float, dict]:
    outcome = compute(Request(path, "fbp", read=read))
    return quality(outcome.image, scan.truth)["psnr"], outcome.attrs["provenance"]


def test_centre_found_within_half_a_pixel_and_fbp_as_good_as_without_offset(scans):
    """The issue's must-show: a DXchange file (uint16 counts, flat-field structure, Poisson noise, Blosc
    compressed) whose rotation axis is 6.3 pixels off the middle reconstructs as well as the same scan without
    offset reconstructed at its exact centre."""
    path, scan = scans["offset"]
    with h5py.File(path) as f:
        assert f["exchange/data"]._filters.get("32001") is not None  # Blosc, opened through hdf5plugin
    psnr, provenance = fbp_psnr(path, scan)
    centre = next(step for step in provenance["steps"] if step["step"] == "centre of rotation")
    assert abs(centre["center"] - scan.center) < 0.5
    assert centre["det_offset"] == pytest.approx(centre["center"] - 63.5, abs=1e-3)
    centred_path, centred = scans["centred"]
    reference, _ = fbp_psnr(centred_path, centred, center=str(centred.center))
    assert psnr > reference - 0.5
    ignored, _ = fbp_psnr(path, scan, center="63.5")  # reading it as if centred: what recon did before
    assert ignored < reference - 3


def test_nxtomo_written_by_its_package_gives_the_same_sinograms(scans):
    (dx_path, _), (nx_path, _) = scans["offset"], scans["nxtomo"]
    assert detect_layout(dx_path) == "dxchange" and detect_layout(nx_path) == "nxtomo"
    with open_measurement(dx_path, center="69.8") as dx, open_measurement(nx_path, center="69.8") as nx:
        np.testing.assert_array_equal(nx.read("sinogram"), dx.read("sinogram"))
        np.testing.assert_allclose(nx.read("angles"), dx.read("angles"))
        assert nx.attrs["pixel_size"] == pytest.approx(1.3) and nx.attrs["unit"] == "um"
        assert "2 alignment/invalid frames left out" in nx.describe()


def test_rows_are_read_and_counted_lazily(scans):
    path, _ = scans["offset"]
    with open_measurement(path, center="69.8") as m:
        assert m.n_slices == 4 and m.shape("sinogram") == (4, 180, 128)
        assert m.read("sinogram", slice(1, 2)).shape == (1, 180, 128)
        assert m.provenance["counts"]["rows_read"] == 1


def test_imported_file_reconstructs_the_same_and_keeps_the_provenance(scans, tmp_path):
    path, scan = scans["offset"]
    out = tmp_path / "native.h5"
    import_layout("dxchange", [path], out, {"rings": "sorting", "ring_size": "5"}, command="recon import ...")
    native, provenance = fbp_psnr(out, scan)
    layout, _ = fbp_psnr(path, scan, rings="sorting", ring_size="5")
    assert abs(native - layout) < 0.1
    assert provenance["layout"] == "dxchange" and provenance["sources"] == [str(path), str(out)]
    assert [s["step"] for s in provenance["steps"]][-2:] == ["ring removal", "centre of rotation"]
    assert provenance["counts"]["rows_read"] == 4


def test_angles_without_a_unit_are_never_guessed(tmp_path):
    scan = simulate_scan(cols=32, rows=1, views=60)
    radians = scan.__class__(scan.projections, scan.flats, scan.darks, np.deg2rad(scan.angles_deg), scan.center,
                             scan.truth)
    path = write_dxchange(tmp_path / "rad.h5", radians, theta_units=None, compress=False)
    with pytest.raises(UserError, match=r"no units attribute and span 3.089\d*: degrees or radians\?; fix: give "
                                        r"--read angle_unit=deg or --read angle_unit=rad"):
        open_measurement(path, center="15.5")
    with open_measurement(path, center="15.5", angle_unit="rad") as m:
        np.testing.assert_allclose(m.read("angles"), np.deg2rad(scan.angles_deg))
    degrees = write_dxchange(tmp_path / "deg.h5", scan, theta_units=None, compress=False)
    with open_measurement(degrees, center="15.5") as m:  # 177 can only be degrees
        np.testing.assert_allclose(m.read("angles"), np.deg2rad(scan.angles_deg))


def test_a_scan_without_flats_is_refused(tmp_path):
    scan = simulate_scan(cols=32, rows=1, views=30)
    path = write_dxchange(tmp_path / "noflat.h5", scan, compress=False)
    with h5py.File(path, "a") as f:
        del f["exchange/data_white"]
    with pytest.raises(UserError, match="holds no flat"):
        open_measurement(path)
