"""`recon demo`: its real cases simulate valid files from real images, and the demo machinery (pipeline runs,
table, montage, view commands, no silent overwrite) works end to end on a small case."""

import h5py
import numpy as np
import pytest
from PIL import Image

from recon.demo import CASES, TILE, Case, run_demo
from recon.io.specs import validate_file

from .conftest import run_cli


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.key)
def test_each_case_simulates_a_valid_measurement_with_real_content(case, tmp_path):
    from recon.io.measurement import write_measurement

    datasets, attrs = case.make(np.random.default_rng(0))
    path = write_measurement(tmp_path / "m.h5", case.spec, datasets, attrs)
    assert validate_file(path).ok
    truth = np.abs(datasets["ground_truth"])
    bright = (truth > 0.1 * truth.max()).mean()
    assert 0.001 < bright < 0.95  # an object with structure, not a blank or constant field


def test_the_ct_and_mri_cases_are_the_real_dicom_images():
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from recon.demo import head_ct, shoulder_mri

    head = head_ct(64)[0]
    assert head.shape == (64, 64) and 0.9 < np.median(head[24:40, 24:40]) < 1.2  # brain: attenuation near water
    raw = dcmread(get_testdata_file("MR2_UNCR.dcm")).pixel_array
    assert np.corrcoef(shoulder_mri(64)[0][::8, ::8].ravel(), raw[::128, ::128].ravel())[0, 1] > 0.7


def _small_ct(rng):
    from recon.phantoms import shepp_logan_3d
    from recon.simulate import simulate_ct_parallel

    return simulate_ct_parallel(shepp_logan_3d(32, 4), views=20, noise_std=0.01, rng=rng)


SMALL = (Case("small", "small_ct", "test: 4 x 32^2 phantom, 20 views", "ct-parallel/1",
              (("fbp", {}), ("tv", {"iterations": "100"})), _small_ct),)


def test_demo_runs_the_pipeline_prints_a_table_and_writes_a_montage(tmp_path, capsys):
    rows = run_demo(tmp_path / "demo", catalogue=SMALL)
    out = capsys.readouterr().out
    assert [row.method for row in rows] == ["fbp", "tv"]
    assert rows[1].psnr > rows[0].psnr + 3  # tv beats fbp at 20 views
    with h5py.File(rows[1].output) as file:
        assert file.attrs["method"] == "tv" and file.attrs["psnr"] == pytest.approx(rows[1].psnr)
    montage = Image.open(tmp_path / "demo" / "demo.png")
    assert montage.size[0] == 3 * TILE and np.asarray(montage).std() > 10  # truth, fbp, tv
    assert "tv iterations=100" in out and f"{rows[1].psnr:.2f}" in out
    assert f"recon view {tmp_path / 'demo' / 'small_ct.h5'} " in out


def test_demo_refuses_to_replace_earlier_outputs_and_unknown_cases(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "ct_head.h5").write_bytes(b"earlier")
    result = run_cli("demo", "--out", tmp_path / "demo", "--cases", "ct")
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (tmp_path / "demo" / "ct_head.h5").read_bytes() == b"earlier"
    result = run_cli("demo", "--out", tmp_path / "demo", "--cases", "ct,pet")
    assert result.returncode == 2 and "'pet'" in result.stderr and "ct, mri, radar, dynamic" in result.stderr
