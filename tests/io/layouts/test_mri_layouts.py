"""fastMRI and ISMRMRD files read as they are: detection, conversion, lazy reads, options, and the same PSNR as
the same data in recon's own spec, through the real CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from mri_layout_files import (
    COILS,
    COLUMNS,
    CROP_COLUMNS,
    FIRST_COLUMN,
    ROWS,
    SLICES,
    column_mask,
    ismrmrd_header,
    simulate,
    write_fastmri,
    write_ismrmrd,
    write_native,
)

from recon.cli import main
from recon.errors import UserError
from recon.io.layouts import detect_layout, open_measurement
from recon.io.layouts.cartesian import Undersampling
from recon.metrics import quality
from tests.cli.conftest import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layouts")
    acquisition, mask = simulate(), column_mask()
    return {"acquisition": acquisition, "mask": mask,
            "train": write_fastmri(folder / "train.h5", acquisition),
            "test": write_fastmri(folder / "test.h5", acquisition, mask),
            "single": write_fastmri(folder / "single.h5", acquisition, single_coil=True),
            "ismrmrd": write_ismrmrd(folder / "raw.h5", acquisition, mask),
            "native": write_native(folder / "native.h5", acquisition, mask)}


def test_layouts_are_detected_from_content_not_names(files, tmp_path):
    assert [detect_layout(files[k]) for k in ("train", "test", "single", "ismrmrd", "native")] == \
        ["fastmri", "fastmri", "fastmri", "ismrmrd", "recon"]
    renamed = tmp_path / "scan.ismrmrd.h5"
    renamed.write_bytes(files["train"].read_bytes())
    assert detect_layout(renamed) == "fastmri"


def test_fastmri_training_file_reads_as_mri_cartesian(files):
    with open_measurement(files["train"]) as m:
        assert m.spec.id == "mri-cartesian/1" and m.layout == "fastmri" and m.n_slices == SLICES
        assert m.dims == {"nz": SLICES, "n_coils": COILS, "ny": ROWS, "nx": COLUMNS, "crop_ny": ROWS,
                          "crop_nx": CROP_COLUMNS}
        assert m.shape("kspace") == (SLICES, COILS, ROWS, COLUMNS) and m.attrs["crop"] == [ROWS, CROP_COLUMNS]
        kspace = m.read("kspace", slice(1, 2))  # one slice: oversampling removed, axes as fastMRI's
        np.testing.assert_allclose(kspace, files["acquisition"].without_oversampling()[1:2], atol=1e-6)
        mask = m.read("mask")
        assert mask.shape == (ROWS, COLUMNS) and mask.all(axis=0).sum() == mask.any(axis=0).sum()
        assert not mask[:, :FIRST_COLUMN].any() and mask[:, FIRST_COLUMN:-FIRST_COLUMN].all()  # zero padding
        np.testing.assert_array_equal(m.read("ground_truth"), files["acquisition"].rss)
        steps = [step["step"] for step in m.provenance["steps"]]
        assert steps == ["readout_oversampling_removed", "crop"] and not m.has("coil_maps")
        with pytest.raises(UserError, match="coil_maps"):
            m.read("coil_maps")


def test_fastmri_test_file_takes_its_1d_mask(files):
    with open_measurement(files["test"]) as m:
        mask = m.read("mask")
        np.testing.assert_array_equal(mask, np.broadcast_to(files["mask"], (ROWS, COLUMNS)))
        assert not m.has("ground_truth") and m.undersampled()
        with pytest.raises(UserError, match="undersampled already"):
            open_measurement(files["test"], acceleration="4")


@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_retrospective_masks_follow_fastmri(kind):
    scheme = Undersampling(kind, 4.0, 0.08, seed=3)
    masks = np.stack([Undersampling(kind, 4.0, 0.08, seed=s).columns(368) for s in range(20)])
    assert abs(368 / masks.sum(1).mean() - 4) < 0.3
    n_low = round(368 * 0.08)
    assert masks[:, (368 - n_low + 1) // 2:(368 - n_low + 1) // 2 + n_low].all()
    np.testing.assert_array_equal(scheme.columns(368), scheme.columns(368))
    assert len({m.tobytes() for m in masks}) > 1


def test_retrospective_undersampling_never_samples_unacquired_columns(files):
    with open_measurement(files["train"], acceleration="3", mask="equispaced", seed="2") as m:
        mask, kspace = m.read("mask"), m.read("kspace")
        assert not mask[:, :FIRST_COLUMN].any() and not mask[:, COLUMNS - FIRST_COLUMN:].any()
        assert (kspace[..., ~mask.any(axis=0)] == 0).all() and 2.5 < COLUMNS / mask.any(axis=0).sum() < 3.6
        assert m.provenance["steps"][1] == {"step": "undersampling", "mask": "equispaced", "acceleration": 3.0,
                                            "center_fraction": pytest.approx(0.32 / 3), "seed": 2,
                                            "sampled_columns": int(mask.any(axis=0).sum()), "columns": 68}


def test_single_coil_file_gives_its_esc_ground_truth(files):
    with open_measurement(files["single"]) as m:
        assert m.shape("kspace") == (SLICES, 1, ROWS, COLUMNS) and m.title == "fastMRI single-coil"
        assert m.read("ground_truth").shape == (SLICES, ROWS, CROP_COLUMNS)


def test_ismrmrd_acquisitions_fill_the_same_grid(files):
    with open_measurement(files["ismrmrd"]) as m, open_measurement(files["native"]) as native:
        assert m.layout == "ismrmrd" and m.dims == {**native.dims, "crop_ny": ROWS, "crop_nx": CROP_COLUMNS}
        np.testing.assert_array_equal(m.read("mask"), native.read("mask"))
        np.testing.assert_allclose(m.read("kspace", slice(0, 1)), native.read("kspace", slice(0, 1)), atol=1e-6)


def test_ismrmrd_averages_repetitions_and_reversed_lines(tmp_path):
    import ismrmrd

    rng = np.random.default_rng(0)
    line = (rng.standard_normal((2, 2 * ROWS)) + 1j * rng.standard_normal((2, 2 * ROWS))).astype(np.complex64)
    path = tmp_path / "rep.h5"
    with ismrmrd.Dataset(str(path), "dataset", create_if_needed=True) as dataset:
        dataset.write_xml_header(ismrmrd_header(coils=2))
        for repetition, scale, reverse in ((0, 1, False), (0, 3, True), (1, 10, False)):
            data = scale * line
            acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data[:, ::-1] if reverse else data),
                                                 center_sample=ROWS)
            acq.idx.kspace_encode_step_1, acq.idx.repetition, acq.idx.average = 30, repetition, int(reverse)
            if reverse:
                acq.set_flag(ismrmrd.ACQ_IS_REVERSE)
            dataset.append_acquisition(acq)
    with pytest.raises(UserError, match="--read repetition=0"):
        open_measurement(path)
    with open_measurement(path, repetition="0") as m:
        raw = m._raw_kspace(0, 1)[0, :, :, 30 + FIRST_COLUMN]
        np.testing.assert_allclose(raw, 2 * line, rtol=1e-5)  # the mean of 1x and the flipped-back 3x
    with pytest.raises(UserError, match="has no repetition 4"):
        open_measurement(path, repetition="4")


def test_ismrmrd_refuses_non_cartesian(tmp_path, files):
    path = tmp_path / "radial.h5"
    path.write_bytes(files["ismrmrd"].read_bytes())
    with h5py.File(path, "r+") as file:
        xml = file["dataset/xml"][0].decode().replace(">cartesian<", ">radial<")
        file["dataset/xml"][0] = xml
    with pytest.raises(UserError, match="trajectory is radial"):
        open_measurement(path)


def test_coil_compression_is_recorded_and_keeps_the_image(files):
    with open_measurement(files["train"], coils="3") as m:
        assert m.dims["n_coils"] == 3 and m.read("kspace").shape[1] == 3
        assert m.provenance["steps"][-1] == {"step": "coil_compression", "method": "svd", "coils": COILS,
                                             "virtual_coils": 3, "automatic": False}
    for options in ({"coils": "9"}, {"colis": "3"}, {"acceleration": "0.5"}, {"mask": "random"}):
        with pytest.raises(UserError, match="--read"):
            open_measurement(files["train"], **options)


def test_many_coils_are_compressed_automatically(tmp_path, files):
    acquisition = files["acquisition"]
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as file:  # 24 coils: each coil's data mixed into four
        mixing = np.random.default_rng(0).standard_normal((24, COILS)).astype(np.float32)
        file["kspace"] = np.einsum("vc,scrp->svrp", mixing, acquisition.kspace).astype(np.complex64)
        file["ismrmrd_header"] = ismrmrd_header(24)
    with open_measurement(path) as m:
        assert 8 <= m.dims["n_coils"] <= 16 and m.provenance["steps"][-1]["automatic"] is True


def test_non_finite_kspace_is_reported_on_read(tmp_path, files):
    path = tmp_path / "nan.h5"
    path.write_bytes(files["train"].read_bytes())
    with h5py.File(path, "r+") as file:
        file["kspace"][1, 0, 5, 5] = np.nan
    with open_measurement(path) as m:
        m.read("kspace", slice(0, 1))  # the bad slice is not read
        with pytest.raises(UserError, match="kspace"):
            m.read("kspace", slice(1, 2))


def _psnr_against(output, truth) -> float:
    with h5py.File(output) as file:
        return quality(file["reconstruction"][()], truth)["psnr"]


@pytest.mark.parametrize("method", ["adjoint", "tv"])
@pytest.mark.slow
def test_foreign_files_reconstruct_like_recons_own(files, tmp_path, method):
    """Must show (issue 24): no conversion step, the same PSNR (within 0.1 dB) as recon's own file of the data."""
    truth = files["acquisition"].rss
    scores = {}
    for name in ("native", "test", "ismrmrd"):
        out = tmp_path / f"{name}.{method}.h5"
        result = run_cli("reconstruct", files[name], "--method", method, "--out", out)
        assert result.returncode == 0, result.stderr
        scores[name] = _psnr_against(out, truth)
    assert scores["native"] > (20 if method == "adjoint" else 25)
    assert abs(scores["test"] - scores["native"]) < 0.1 and abs(scores["ismrmrd"] - scores["native"]) < 0.1


def test_cli_info_names_the_layout_and_the_1d_mask(files, capsys):
    result = run_cli("info", files["test"])
    assert result.returncode == 0, result.stderr
    assert "layout fastmri" in result.stdout and "1D mask (72,)" in result.stdout and "ny=64, nx=72" in result.stdout
    assert main(["info", str(files["ismrmrd"]), "--read", "coils=2"]) == 0
    shown = capsys.readouterr().out
    assert "layout ismrmrd" in shown and "coil compression" in shown


def test_cli_retrospective_undersampling_and_bad_read_options(files, tmp_path, capsys):
    out = tmp_path / "train4x.h5"
    result = run_cli("reconstruct", files["train"], "--method", "adjoint", "--read", "acceleration=4",
                     "--read", "mask=equispaced", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as file:
        assert file["reconstruction"].shape == (SLICES, ROWS, CROP_COLUMNS)
        assert '"undersampling"' in file.attrs["provenance"] and '"estimator"' in file.attrs["coil_maps"]
    capsys.readouterr()
    for read, name in (("acceleration=4", "test"), ("bogus=1", "train"), ("coils=2", "native")):  # one line, exit 2
        code = main(["reconstruct", str(files[name]), "--method", "adjoint", "--read", read, "--out",
                     str(tmp_path / "x.h5")])
        error = capsys.readouterr().err
        assert code == 2 and error.count("\n") == 1 and "--read" in error, error


def test_import_copies_a_fastmri_file_as_read(files, tmp_path):
    """``recon import`` reads a layout through the shared reader API (``sliced``, block reads); the copy reads back
    the same k-space, mask and ground truth."""
    out = tmp_path / "imported.h5"
    result = run_cli("import", "fastmri", files["train"], "--out", out)
    assert result.returncode == 0, result.stderr
    with open_measurement(files["train"]) as foreign, open_measurement(out) as copy:
        assert copy.layout == "recon" and copy.provenance["layout"] == "fastmri"
        assert copy.provenance["sources"] == [str(files["train"]), str(out)]
        assert copy.provenance["spec"] == "mri-cartesian/1"
        for key in ("kspace", "mask", "ground_truth"):
            np.testing.assert_array_equal(copy.read(key), foreign.read(key))
