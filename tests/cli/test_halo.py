"""Streaming z-coupled methods with overlapping halos (``recon reconstruct --memory --halo``): each slab is
reconstructed with ``halo`` more slices on both sides and keeps only its own; the merged file is the whole run's
format, and close to it."""

import h5py
import numpy as np
import pytest

from recon.errors import UserError
from recon.io.reconstruction import read_reconstruction
from recon.pipeline import Request
from recon.streaming import parse_halo, plan_slabs
from tests.cli.conftest import run_cli
from tests.cli.test_streaming import per_slice_bytes

TV_3D = ("--method", "tv", "--set", "dims=3", "--set", "iterations=100")


def budget(ct_file, slices: int) -> int:
    """The --memory holding ``slices`` slices at the classical working copies, and the angles."""
    return slices * 8 * per_slice_bytes(ct_file) + 1024


@pytest.mark.parametrize("text, expected", [("0", 0), ("4", 4), (" 12 ", 12)])
def test_halo_counts(text, expected):
    assert parse_halo(text) == expected


@pytest.mark.parametrize("text", ["-1", "2.5", "four", ""])
def test_a_bad_halo_is_a_user_error(text):
    with pytest.raises(UserError, match="--halo"):
        parse_halo(text)


def test_each_slab_is_extended_by_its_halo_within_the_selection_and_the_budget_counts_it(ct_file):
    plan = plan_slabs(Request(input=ct_file, method="tv", params={"dims": "3"}, slices="3:30"), budget(ct_file, 10), 2)
    assert plan is not None and plan.halo == 2 and plan.slab == 6  # 6 kept + 2 x 2 halo = 10 slices in the budget
    assert plan.ranges == ((3, 9), (9, 15), (15, 20), (20, 25), (25, 30))  # balanced: 6, 6, 5, 5, 5
    assert plan.extended(3, 9) == (3, 11) and plan.extended(15, 20) == (13, 22) and plan.extended(25, 30) == (23, 30)


def test_pnp_admm_slabs_take_the_planes_of_the_whole_selection(ct_file):
    """A slab of fewer than 8 slices would default to planes 1 (and the axial sigma): the plan pins what the whole
    selection resolves, tri-planar on 32 slices; on 6 slices planes 1 is slice-separable and gets no halo."""
    from recon.methods.plug_and_play import TRIPLANAR_SIGMA

    plan = plan_slabs(Request(input=ct_file, method="pnp-admm"), 1, 3)
    assert plan is not None and plan.halo == 3 and plan.pinned == {"planes": 3, "sigma": TRIPLANAR_SIGMA}
    assert plan_slabs(Request(input=ct_file, method="pnp-admm"), 1).halo == 8  # its default (the network's reach)
    small = plan_slabs(Request(input=ct_file, method="pnp-admm", params={"sigma": "0.05"}, slices="0:6"), 1, 3)
    assert small is not None and small.halo == 0 and small.pinned == {"planes": 1}


def test_a_streamed_3d_tv_run_with_a_halo_is_the_whole_runs_file_and_closer_than_without(ct_file, tmp_path):
    """32 slices in 4 slabs of 8: without a halo each slab's TV ends at its cut (max difference 0.080 of the
    phantom's range 1, measured); a halo of 4 leaves 0.0015."""
    whole, plain, halo = tmp_path / "whole.h5", tmp_path / "plain.h5", tmp_path / "halo.h5"
    assert run_cli("reconstruct", ct_file, *TV_3D, "--out", whole).returncode == 0
    result = run_cli("reconstruct", ct_file, *TV_3D, "--memory", budget(ct_file, 8 + 2 * 4), "--out", halo)
    assert result.returncode == 0, result.stderr
    assert "in 4 slabs of up to 8 slices with a halo of 4" in result.stderr, result.stderr
    assert "slab 2/4: slices 8:16 (reconstructed 4:20)" in result.stderr
    assert "slab 4/4: slices 24:32 (reconstructed 20:32)" in result.stderr
    result = run_cli("reconstruct", ct_file, *TV_3D, "--memory", budget(ct_file, 8), "--halo", "0", "--out", plain)
    assert result.returncode == 0 and "in 4 slabs of up to 8 slices (" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["halo.h5", "plain.h5", "whole.h5"]  # no slab folder left

    reference, reference_attrs = read_reconstruction(whole)
    with h5py.File(whole) as expected, h5py.File(halo) as merged:
        assert {k: (v.shape, v.dtype) for k, v in expected.items() if isinstance(v, h5py.Dataset)} == \
            {k: (v.shape, v.dtype) for k, v in merged.items() if isinstance(v, h5py.Dataset)}
        assert set(expected.attrs) == set(merged.attrs)
    image, attrs = read_reconstruction(halo)
    unhaloed, _ = read_reconstruction(plain)
    assert attrs["params"] == reference_attrs["params"] and attrs["params"]["dims"] == 3
    with_halo, without = float(np.abs(image - reference).max()), float(np.abs(unhaloed - reference).max())
    assert with_halo < 0.005 < 0.04 < without, (with_halo, without)
    assert attrs["psnr"] == pytest.approx(reference_attrs["psnr"], abs=0.02)  # over the whole volume
    assert attrs["nmse"] == pytest.approx(reference_attrs["nmse"], rel=0.01)


@pytest.mark.parametrize("text", ["-2", "many"])
def test_a_bad_halo_option_exits_2_with_one_line(ct_file, tmp_path, text):
    result = run_cli("reconstruct", ct_file, *TV_3D, "--halo", text, "--out", tmp_path / "o.h5")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--halo" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


def test_each_method_declares_how_it_streams_and_recon_methods_says_it(ct_file, tmp_path):
    """The halo lives on the method: tv's is 4, and a z-coupled method without one (diffusion-mbir) runs whole."""
    from recon.methods import get_method

    assert get_method("tv").halo == 4 and get_method("diffusion-mbir").halo is None
    assert plan_slabs(Request(input=ct_file, method="tv", params={"dims": "3"}), 1).halo == 4
    assert plan_slabs(Request(input=ct_file, method="diffusion-mbir"), 1) is None
    tv, mbir = run_cli("methods", "tv"), run_cli("methods", "diffusion-mbir")
    assert "halo of 4 slices" in tv.stdout and "run whole" in mbir.stdout
    bad = run_cli("reconstruct", ct_file, "--method", "tv", "--halo", "-2", "--out", tmp_path / "o.h5")
    assert bad.returncode == 2 and "tv 4, pnp-admm 8, dds 4" in bad.stderr and not any(tmp_path.iterdir())
