"""Streaming reconstruction (``recon reconstruct --memory``): a volume over the budget is reconstructed in slabs
and merged into the same output a whole run writes; methods that couple slices beyond a halo run whole (halos:
test_halo.py)."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.errors import UserError
from recon.io.reconstruction import read_reconstruction
from recon.pipeline import Request
from recon.streaming import parse_memory, plan_slabs
from tests.cli.conftest import run_cli


@pytest.mark.parametrize("text, expected", [("8G", 8 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29),
                                            ("2gb", 2 << 30), ("4096", 4096), ("64k", 64 << 10)])
def test_memory_sizes_are_binary(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-1G", "nanG", "G", "", "0.5"])
def test_a_bad_memory_size_is_a_user_error(text):
    with pytest.raises(UserError, match="--memory"):
        parse_memory(text)


def per_slice_bytes(ct_file: Path) -> int:
    with h5py.File(ct_file) as file:
        return sum(file[key][0].nbytes for key in ("sinogram", "ground_truth")) + 4 * 32 * 32


def test_the_plan_covers_the_selection_in_slabs_within_the_budget(ct_file):
    budget = 10 * 8 * per_slice_bytes(ct_file) + 1024  # ten slices at the classical working copies, and the angles
    plan = plan_slabs(Request(input=ct_file, method="cgls", slices="3:30"), budget)
    assert plan is not None and plan.slab == 9  # 27 slices: 3 slabs of at most 10, balanced
    assert plan.ranges == ((3, 12), (12, 21), (21, 30))


@pytest.mark.parametrize("method, params, budget", [
    ("cgls", {}, 1 << 40),  # fits
    ("tv", {"dims": "3", "lam": "auto"}, 1),  # one lam chosen for all the slices: runs whole
    ("diffusion-mbir", {}, 1),  # couples slices and is not among the halo methods: runs whole
])
def test_runs_that_fit_or_couple_slices_are_not_streamed(ct_file, method, params, budget):
    assert plan_slabs(Request(input=ct_file, method=method, params=params), budget) is None


def test_a_streamed_run_writes_the_whole_runs_output(ct_file, tmp_path):
    streamed, whole = tmp_path / "streamed.h5", tmp_path / "whole.h5"
    budget = 12 * 8 * per_slice_bytes(ct_file) + 1024
    result = run_cli("reconstruct", ct_file, "--method", "cgls", "--set", "iterations=10", "--memory", str(budget),
                     "--out", streamed)
    assert result.returncode == 0, result.stderr
    assert "in 3 slabs of up to 11 slices" in result.stderr and "slab 3/3: slices 22:32" in result.stderr
    assert "halo" not in result.stderr and "reconstructed" not in result.stderr  # separable: no overlap
    assert run_cli("reconstruct", ct_file, "--method", "cgls", "--set", "iterations=10", "--out",
                   whole).returncode == 0
    merged, attrs = read_reconstruction(streamed)
    reference, reference_attrs = read_reconstruction(whole)
    assert merged.shape == reference.shape == (32, 32, 32)
    # separable, but float32 CG steps round differently with the batch size; a misplaced slab differs by ~100%
    np.testing.assert_allclose(merged, reference, atol=5e-3 * float(np.ptp(reference)))
    assert attrs["psnr"] == pytest.approx(reference_attrs["psnr"], abs=0.05)
    assert attrs["nmse"] == pytest.approx(reference_attrs["nmse"], rel=0.02)  # the whole volume's, not a slab's
    assert attrs["params"]["iterations"] == 10 and attrs["method"] == "cgls"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.h5", "whole.h5"]  # no slab folder left


def test_a_bad_memory_option_exits_2_with_one_line(ct_file, tmp_path):
    result = run_cli("reconstruct", ct_file, "--method", "fbp", "--memory", "lots", "--out", tmp_path / "o.h5")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--memory" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


def test_without_memory_the_budget_is_half_the_available_memory(ct_file, monkeypatch):
    from recon import memory
    from recon.streaming import default_budget

    per_slice = 8 * per_slice_bytes(ct_file)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * (10 * per_slice + 1024))
    assert default_budget() == 10 * per_slice + 1024
    plan = plan_slabs(Request(input=ct_file, method="cgls"), default_budget())
    assert plan is not None and plan.slab == 8 and plan.ranges[-1] == (24, 32)  # 32 slices, at most 10 a slab


def test_a_file_declaring_data_it_does_not_store_is_never_streamed(tmp_path):
    """10^9 declared slices (1.8 TB) and no chunk written: the plan runs it whole, and the CLI (whose default budget
    would otherwise stream it in thousands of slabs) refuses it with the slices that fit, as before streaming."""
    path = tmp_path / "hollow.h5"
    with h5py.File(path, "w") as file:
        file.attrs["recon_spec"] = "ct-parallel/1"
        file.attrs["image_shape"] = [10**9, 16, 16]
        file["angles"] = np.linspace(0, np.pi, 8, endpoint=False)
        file.create_dataset("sinogram", shape=(10**9, 8, 23), dtype="f4", chunks=(1, 8, 23))
    assert plan_slabs(Request(input=path, method="fbp"), 1 << 20) is None
    result = run_cli("reconstruct", path, "--method", "fbp", "--out", tmp_path / "out.h5")
    assert result.returncode == 2, result.stderr
    assert "--slices" in result.stderr and "slab" not in result.stderr
    assert not (tmp_path / "out.h5").exists()


def test_a_streamed_selection_records_its_slices_in_the_source(ct_file, tmp_path):
    """As a whole run over --slices does: the merged output says which slices it reconstructed."""
    out = tmp_path / "part.h5"
    budget = 10 * 8 * per_slice_bytes(ct_file) + 1024
    result = run_cli("reconstruct", ct_file, "--method", "fbp", "--slices", "2:30", "--memory", str(budget),
                     "--out", out)
    assert result.returncode == 0 and "in 3 slabs" in result.stderr, result.stderr
    image, attrs = read_reconstruction(out)
    assert image.shape[0] == 28 and attrs["source"] == f"{ct_file} slices 2:30"
