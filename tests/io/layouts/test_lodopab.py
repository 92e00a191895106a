"""LoDoPaB-CT files read as they are: detection, the exact geometry, units, pairing, equivalence with a native file."""

import h5py
import numpy as np
import pytest
import torch
from layout_files import lodopab_sample, write_lodopab_pair

from recon.errors import ReconWarning, UserError
from recon.io.layouts import detect_layout, lodopab, open_measurement, role
from recon.io.measurement import write_measurement
from recon.physics.ct import ParallelBeamCT
from recon.pipeline import Request, compute

STEP = 20  # every 20th of the 1000 views: the same data, a geometry cheap enough for tests


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_lodopab_pair(tmp_path_factory.mktemp("lodopab"), n=2)


def test_recognised_by_content_and_paired_by_index(pair, tmp_path):
    observation, truth = pair
    assert detect_layout(observation) == detect_layout(truth) == "lodopab"
    assert role(observation) == ("lodopab", "measurement") and role(truth) == ("lodopab", "ground_truth")
    assert lodopab.partner(observation) == truth and lodopab.partner(truth) == observation
    renamed = tmp_path / "scan.h5"
    renamed.write_bytes(observation.read_bytes())
    assert detect_layout(renamed) == "lodopab"  # the content says it, not the name
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros((2, 1000, 512), np.float32)  # one bin short: not LoDoPaB's geometry
    assert detect_layout(other) is None


def test_reader_serves_the_file_unconverted_with_units_and_geometry_declared(pair):
    observation, truth = pair
    with h5py.File(observation) as f, h5py.File(truth) as g:
        raw, raw_truth = f["data"][1:2], g["data"][1:2]
    with open_measurement(observation) as m:
        assert m.layout == "lodopab" and m.spec.id == "ct-parallel/1" and m.n_slices == 2
        np.testing.assert_array_equal(m.read("sinogram", slice(1, 2)), raw)  # metres, as stored
        np.testing.assert_allclose(m.read("angles"), (np.arange(1000) + 0.5) * np.pi / 1000)
        np.testing.assert_array_equal(m.read("ground_truth", slice(1, 2))[0], np.rot90(raw_truth[0]))
        assert m.attrs["path_length_unit"] == "m" and m.attrs["unit"] == "m"
        assert m.attrs["pixel_size"] == pytest.approx(0.26 / 362)
        assert m.attrs["det_spacing"] == pytest.approx(np.sqrt(2) * 362 / 513) and m.attrs["det_offset"] == 0
        assert m.provenance["sources"] == [str(observation), str(truth)]
        assert "lodopab" in m.describe() and "rot90" in m.describe()
    with open_measurement(observation, angle_step="20", ground_truth="none") as m:
        assert m.shape("sinogram") == (2, 50, 513) and not m.has("ground_truth")
        np.testing.assert_allclose(m.read("angles"), (np.arange(0, 1000, 20) + 0.5) * np.pi / 1000)


def test_geometry_reproduces_the_data_and_each_naive_mistake_does_not():
    """recon's projector, in the geometry the reader declares, applied to the ground truth the reader serves,
    reproduces LoDoPaB's noiseless line integrals (computed analytically in odl's geometry) up to discretisation;
    a half-bin detector shift, endpoint angles or an unrotated image do measurably worse."""
    line_integrals, truth = lodopab_sample(7, noise=False)
    y = line_integrals[::STEP] / lodopab.PIXEL_M

    def residual(angles, det_offset=0.0, image=None):
        image = np.rot90(truth) if image is None else image
        physics = ParallelBeamCT((362, 362), angles, n_det=513, det_spacing=lodopab.DET_SPACING_PIXELS,
                                 det_offset=det_offset)
        projected = physics.A(torch.from_numpy(np.ascontiguousarray(image))[None, None])[0, 0].numpy()
        return np.linalg.norm(projected - y) / np.linalg.norm(y)

    ours = residual(lodopab.ANGLES[::STEP])
    assert ours < 0.015
    assert residual(lodopab.ANGLES[::STEP], det_offset=0.5) > 2.5 * ours
    assert residual(lodopab.ANGLES[::STEP], image=truth) > 20 * ours


def _native(path, sinogram, angles, truth, **attrs):
    attrs = {"image_shape": [1, 362, 362], "det_spacing": lodopab.DET_SPACING_PIXELS, **attrs}
    write_measurement(path, "ct-parallel/1", {"sinogram": sinogram, "angles": angles, "ground_truth": truth}, attrs)
    return path


def test_same_psnr_as_native_and_naive_conversions_lose(pair, tmp_path):
    """fbp and tv on the LoDoPaB file give the PSNR of the same data written natively (line integrals divided by
    the pixel size, exact angles and detector); the naive conversions of the issue lose: metres read as pixels
    (and recon warns), half a detector bin off centre."""
    observation, truth_file = pair
    with h5py.File(observation) as f, h5py.File(truth_file) as g:
        sinogram, truth = f["data"][:1, ::STEP], np.rot90(g["data"][:1], axes=(1, 2)).copy()
    angles = lodopab.ANGLES[::STEP]
    native = _native(tmp_path / "native.h5", sinogram / lodopab.PIXEL_M, angles, truth)
    metres = _native(tmp_path / "metres.h5", sinogram, angles, truth)
    half = _native(tmp_path / "half.h5", sinogram / lodopab.PIXEL_M, angles, truth, det_offset=0.5)

    def psnr(path, method, read=None):
        params = {"iterations": 40} if method == "tv" else {"filter": "hann"}  # hann: low-dose data
        with pytest.warns(ReconWarning, match="times smaller") if path == metres else _no_recon_warning():
            outcome = compute(Request(path, method, read=read or {}, slices="0:1", params=params))
        return outcome.summary.metrics["psnr"], outcome.attrs["provenance"]

    for method in ("fbp", "tv"):
        layout_psnr, provenance = psnr(observation, method, {"angle_step": str(STEP)})
        assert provenance["layout"] == "lodopab" and provenance["steps"][1] == {"step": "angle subset",
                                                                                "angle_step": STEP}
        assert abs(layout_psnr - psnr(native, method)[0]) < 0.1
        if method == "fbp":  # metres read as pixels: an image 1392 times too faint, whatever the method
            metres_psnr, metres_provenance = psnr(metres, method)
            assert metres_psnr < layout_psnr - 7
            assert "times smaller than the projections of ground_truth" in metres_provenance["warnings"][0]
        else:  # half a bin off centre blurs every edge: tv shows it (noisy fbp at 50 views hides it)
            assert psnr(half, method)[0] < layout_psnr - 3


class _no_recon_warning:
    def __enter__(self):
        import warnings

        self.manager = warnings.catch_warnings()
        self.manager.__enter__()
        warnings.simplefilter("error", ReconWarning)

    def __exit__(self, *exc):
        self.manager.__exit__(*exc)


def test_wrong_uses_are_one_line_errors(pair, tmp_path):
    observation, truth = pair
    with pytest.raises(UserError, match="is a LoDoPaB ground-truth file, not a measurement; fix: reconstruct its "
                                        "observation file"):
        open_measurement(truth)
    with pytest.raises(UserError, match="angle_step=7 does not divide the 1000 views"):
        open_measurement(observation, angle_step="7")
    with pytest.raises(UserError, match="takes no option 'center'.*angle_step"):
        open_measurement(observation, center="auto")
    other = tmp_path / "ground_truth_other.hdf5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros((3, 362, 362), np.float32)
    with pytest.raises(UserError, match=r"is not the ground truth of .*expected data \(2, 362, 362\)"):
        open_measurement(observation, ground_truth=str(other))
