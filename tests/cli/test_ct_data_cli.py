"""Users' CT data through the real CLI: the layouts read as they are, and each silent failure of issue 24 (metres,
degrees, half-pixel centre, sinogram as volume) giving the right image or one line naming the fix."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from layout_files import (
    ellipse_image,
    ellipse_projections,
    scaled_ellipses,
    simulate_scan,
    write_dxchange,
    write_lodopab_pair,
)
from make_files import write_valid_file

from recon.io.layouts import lodopab
from recon.metrics import quality
from recon.physics.ct import ParallelBeamCT
from recon_napari.layers import read_layers
from tests.cli.conftest import run_cli


def one_line(stderr: str, prefix: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def lodopab_pair(tmp_path_factory):
    return write_lodopab_pair(tmp_path_factory.mktemp("lodopab"), n=1)


@pytest.fixture(scope="module")
def dxchange_scan(tmp_path_factory):
    scan = simulate_scan(cols=96, rows=2, views=120, center_offset=3.7, seed=4)
    return write_dxchange(tmp_path_factory.mktemp("dx") / "scan.h5", scan), scan


def test_info_names_the_layout_and_how_it_maps(lodopab_pair, dxchange_scan):
    result = run_cli("info", lodopab_pair[0])
    assert result.returncode == 0, result.stderr
    assert "layout: lodopab (LoDoPaB-CT observation), read as ct-parallel/1" in result.stdout
    assert "(k + 0.5) pi / 1000" in result.stdout and "numpy.rot90" in result.stdout
    result = run_cli("info", dxchange_scan[0], "--read", "center=51.2")
    assert result.returncode == 0, result.stderr
    assert "layout: dxchange" in result.stdout and "centre of rotation: column 51.20 (det_offset +3.70" in result.stdout


def test_lodopab_reconstructs_directly_in_the_right_units(lodopab_pair, tmp_path):
    out = tmp_path / "o.h5"
    result = run_cli("reconstruct", lodopab_pair[0], "-m", "fbp", "--set", "filter=hann", "--read", "angle_step=20",
                     "--out", out)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    psnr = float(result.stdout.split("PSNR ")[1].split(" dB")[0])
    assert psnr > 20  # metres read as pixels gave 13.8 dB on this data
    with h5py.File(out) as f:
        provenance = json.loads(f.attrs["provenance"])
        assert provenance["layout"] == "lodopab" and f.attrs["unit"] == "m"
        np.testing.assert_allclose(f.attrs["voxel_size"], [0.26 / 362] * 3)


def test_metres_in_a_bare_array_warn_in_one_line_and_declared_units_fix_it(lodopab_pair, tmp_path):
    with h5py.File(lodopab_pair[0]) as f, h5py.File(lodopab_pair[1]) as g:
        np.save(tmp_path / "obs.npy", f["data"][0, ::20])
        np.save(tmp_path / "truth.npy", np.rot90(g["data"][0]))
    np.save(tmp_path / "angles.npy", lodopab.ANGLES[::20])
    common = ["import", "sinogram", tmp_path / "obs.npy", "--angles", tmp_path / "angles.npy", "--angle-unit", "rad",
              "--det-spacing", str(lodopab.DET_SPACING_PIXELS), "--ground-truth", tmp_path / "truth.npy"]
    assert run_cli(*common, "--out", tmp_path / "naive.h5").returncode == 0
    naive = run_cli("reconstruct", tmp_path / "naive.h5", "-m", "fbp", "--set", "filter=hann")
    assert naive.returncode == 0
    warning = one_line(naive.stderr, "warning:")
    assert "times smaller than the projections of ground_truth" in warning and "fix: declare the units" in warning
    assert run_cli(*common, "--pixel-size", str(lodopab.PIXEL_M), "--unit", "m", "--path-length-unit", "m",
                   "--out", tmp_path / "declared.h5").returncode == 0
    declared = run_cli("reconstruct", tmp_path / "declared.h5", "-m", "fbp", "--set", "filter=hann")
    assert declared.returncode == 0 and "warning" not in declared.stderr, declared.stderr
    psnr = [float(r.stdout.split("PSNR ")[1].split(" dB")[0]) for r in (naive, declared)]
    assert psnr[1] > psnr[0] + 7


def test_degrees_are_refused_in_one_line_with_the_fix(tmp_path):
    # a hand-written converter that kept the angles in degrees (written in-process: one recon start fewer)
    path = write_valid_file("ct-parallel", tmp_path / "deg.h5", angles=np.linspace(0, 180, 12, endpoint=False))
    result = run_cli("reconstruct", path, "-m", "fbp")
    assert result.returncode == 2
    line = one_line(result.stderr, "error:")
    assert "angles span 165 radians" in line and "look like degrees" in line and "numpy.deg2rad" in line
    info = run_cli("info", path)
    assert info.returncode == 2 and "they look like degrees" in info.stderr


def test_a_bare_array_needs_the_unit_of_its_angles(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((30, 40), np.float32))
    result = run_cli("import", "sinogram", tmp_path / "s.npy", "--angles", "30", "--out", tmp_path / "s.h5")
    assert result.returncode == 2
    assert "--angle-unit: the unit of the angles is not given; fix: add --angle-unit deg" in result.stderr
    assert not (tmp_path / "s.h5").exists()


def test_a_sinogram_off_centre_by_half_a_bin_is_found_and_reconstructed_right(tmp_path):
    """The half-pixel case: the rotation axis projects half a bin off the detector's middle. Imported with
    --center auto, recon finds it and reconstructs as well as with the true centre; read as centred, 3+ dB worse."""
    ellipses = scaled_ellipses(40.0, 0.02)
    angles = np.linspace(0, np.pi, 180, endpoint=False)
    sinogram = ellipse_projections(ellipses, angles, np.arange(129) - 64.5)  # the axis at column 64.5
    np.save(tmp_path / "s.npy", sinogram.astype(np.float32))
    x, y = np.meshgrid(np.arange(96) - 47.5, 47.5 - np.arange(96))
    truth = ellipse_image(ellipses, x, y, step=1.0).astype(np.float32)
    np.save(tmp_path / "truth.npy", truth)
    psnr = {}
    for center in ("auto", "64.5", "64"):
        out = tmp_path / f"s{center}.h5"
        result = run_cli("import", "sinogram", tmp_path / "s.npy", "--angles", "180", "--angle-unit", "deg",
                         "--center", center, "--image-size", "96", "--ground-truth", tmp_path / "truth.npy",
                         "--out", out)
        assert result.returncode == 0, result.stderr
        with h5py.File(out) as f:
            if center == "auto":
                assert abs(f.attrs["det_offset"] - 0.5) < 0.05
        run = run_cli("reconstruct", out, "-m", "fbp")
        psnr[center] = float(run.stdout.split("PSNR ")[1].split(" dB")[0])
    assert psnr["auto"] > psnr["64.5"] - 0.2 and psnr["64"] < psnr["64.5"] - 3


def test_a_sinogram_given_as_a_volume_warns_in_one_line(tmp_path):
    physics = ParallelBeamCT((48, 48), np.linspace(0, np.pi, 60, endpoint=False))
    phantom = np.zeros((48, 48), np.float32)
    phantom[12:30, 15:40] = 1
    np.save(tmp_path / "sino.npy", physics.A(torch.from_numpy(phantom)[None, None])[0, 0].numpy())
    result = run_cli("simulate", "ct-parallel", "--volume", tmp_path / "sino.npy", "--out", tmp_path / "x.h5")
    line = one_line(result.stderr, "warning:")
    assert "sinogram, not an image" in line and "recon import sinogram" in line


def test_dxchange_reconstructs_with_its_centre_found_and_imports_with_provenance(dxchange_scan, tmp_path):
    path, scan = dxchange_scan
    out = tmp_path / "r.h5"
    result = run_cli("reconstruct", path, "-m", "fbp", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as f:
        steps = json.loads(f.attrs["provenance"])["steps"]
        centre = next(step for step in steps if step["step"] == "centre of rotation")
        assert abs(centre["center"] - scan.center) < 0.5
        assert quality(f["reconstruction"][()], scan.truth)["psnr"] > 25
        assert list(f.attrs["voxel_size"]) == pytest.approx([1.3, 1.3, 1.3]) and f.attrs["unit"] == "um"
    native = tmp_path / "native.h5"
    result = run_cli("import", "dxchange", path, "--out", native, "--read", "rings=sorting")
    assert result.returncode == 0 and "wrote" in result.stdout, result.stderr
    info = run_cli("info", native)
    assert info.returncode == 0 and "imported from dxchange" in info.stdout


def test_voxel_size_travels_from_nifti_through_simulate_and_reconstruct_into_napari(tmp_path):
    volume = np.zeros((24, 24, 6), np.float32)
    volume[6:18, 8:16, :] = 1.0
    image = nib.Nifti1Image(volume, np.diag([0.8, 0.8, 5.0, 1.0]))
    image.header.set_xyzt_units("mm")
    nib.save(image, tmp_path / "v.nii.gz")
    assert run_cli("simulate", "ct-parallel", "--volume", tmp_path / "v.nii.gz", "--views", "20",
                   "--out", tmp_path / "m.h5").returncode == 0
    assert run_cli("reconstruct", tmp_path / "m.h5", "-m", "fbp", "--out", tmp_path / "r.h5").returncode == 0
    with h5py.File(tmp_path / "r.h5") as f:
        assert list(f.attrs["voxel_size"]) == pytest.approx([5.0, 0.8, 0.8]) and f.attrs["unit"] == "mm"
    layer = read_layers(tmp_path / "r.h5")[0][1]
    assert layer["scale"] == pytest.approx([5.0, 0.8, 0.8]) and layer["units"] == "mm"
