"""Reader and writer without a viewer: every spec opens as the right layers, lazily; round trips keep data."""

import json

import dask.array as da
import h5py
import numpy as np
import pytest
from make_files import write_valid_file

from recon.errors import UserError
from recon.io.reconstruction import read_reconstruction, write_reconstruction
from recon_napari._reader import NOTHING_READ, get_reader
from recon_napari._writer import write_image
from recon_napari.layers import read_layers

from .conftest import SPECS

EXPECTED = {  # spec -> (first layer's suffix, its axis labels)
    "ct-parallel/1": ("[sinogram]", ("z", "angle", "detector")),
    "mri-cartesian/1": ("[kspace]", ("z", "coil", "ky", "kx")),
    "ct-dynamic/1": ("[sinogram]", ("frame view", "detector")),
    "mri-dynamic/1": ("[kspace]", ("t", "coil", "ky", "kx")),
    "mimo-nearfield/1": ("[measurements]", ("frequency", "tx", "rx")),
    "sparse-linear/1": ("[y]", ("sample", "m")),
    "reconstruction/1": ("[fbp]", ("z", "y", "x")),
}


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_opens_lazily_with_labels(spec, tmp_path):
    path = write_valid_file(spec, tmp_path / "f.h5")
    assert get_reader(str(path)) is not None
    layers = read_layers(path)
    data, kwargs, kind = layers[0]
    suffix, labels = EXPECTED[spec]
    assert kind == "image" and kwargs["name"] == f"f {suffix}"
    assert tuple(kwargs["axis_labels"]) == labels[-data.ndim:]
    assert isinstance(data, da.Array)
    assert np.isfinite(np.asarray(data[(0,) * (data.ndim - 2)])).all()  # complex data shown as real values
    low, high = kwargs["contrast_limits"]
    assert high > low
    assert kwargs["metadata"]["recon"]["path"] == str(path)


def test_sinograms_are_shown_square(tmp_path):
    path = write_valid_file("ct-dynamic/1", tmp_path / "d.h5")
    data, kwargs, _ = read_layers(path)[0]
    with h5py.File(path, "r") as f:
        frames, views, n_det = f["sinogram"].shape
        np.testing.assert_array_equal(np.asarray(data), f["sinogram"][()].reshape(frames * views, n_det))
    assert kwargs["scale"][0] * data.shape[0] == pytest.approx(data.shape[1])


def test_ground_truth_is_a_hidden_layer(tmp_path):
    path = write_valid_file("ct-parallel/1", tmp_path / "m.h5")
    truth = [kwargs for _, kwargs, _ in read_layers(path) if kwargs["name"].endswith("[ground truth]")]
    assert len(truth) == 1 and truth[0]["visible"] is False and truth[0]["axis_labels"] == ("z", "y", "x")


def test_reconstruction_scale_units_limits_and_extra_layers(tmp_path):
    rng = np.random.default_rng(0)
    volume = rng.random((4, 16, 16)).astype(np.float32)
    path = write_reconstruction(tmp_path / "r.h5", volume, attrs={
        "method": "tv", "params": {}, "source": "m.h5", "command": "test", "device": "cpu", "elapsed_s": 1.0,
        "seed": 0, "axes": "t,y,x", "voxel_size": [1.0, 0.5, 0.25], "unit": "mm", "display_min": 0.1,
        "display_max": 0.9}, datasets={"uncertainty": volume / 10, "ground_truth": volume})
    layers = {kwargs["name"]: (data, kwargs) for data, kwargs, _ in read_layers(path)}
    data, kwargs = layers["r [tv]"]
    assert kwargs["scale"] == [1.0, 0.5, 0.25] and kwargs["units"] == "mm"
    assert kwargs["axis_labels"] == ("t", "y", "x") and kwargs["contrast_limits"] == [0.1, 0.9]
    assert set(layers) == {"r [tv]", "r [tv uncertainty]", "r [ground truth]"}
    np.testing.assert_array_equal(np.asarray(data), volume)


def test_complex_radar_reconstruction_shows_magnitude_and_phase(tmp_path):
    rng = np.random.default_rng(1)
    volume = (rng.standard_normal((5, 8, 8)) + 1j * rng.standard_normal((5, 8, 8))).astype(np.complex64)
    path = write_reconstruction(tmp_path / "radar.h5", volume, attrs={
        "method": "backprojection", "params": {}, "source": "m.h5", "command": "t", "device": "cpu",
        "elapsed_s": 0.1, "seed": 0, "voxel_size": [0.01, 0.02, 0.02], "unit": "m"})
    layers = {kwargs["name"]: (data, kwargs) for data, kwargs, _ in read_layers(path)}
    magnitude, kwargs = layers["radar [backprojection]"]
    np.testing.assert_allclose(np.asarray(magnitude), np.abs(volume), rtol=1e-6)
    assert kwargs["units"] == "m" and kwargs["scale"] == [0.01, 0.02, 0.02]
    phase, kwargs = layers["radar [backprojection phase]"]
    np.testing.assert_allclose(np.asarray(phase), np.angle(volume), atol=1e-6)
    assert kwargs["visible"] is False


def test_radar_measurement_ground_truth_in_metres(tmp_path):
    path = write_valid_file("mimo-nearfield/1", tmp_path / "radar.h5")
    with h5py.File(path, "r") as f:
        lo, hi, shape = f.attrs["grid_min"], f.attrs["grid_max"], f.attrs["grid_shape"]
    truth = [kwargs for _, kwargs, _ in read_layers(path) if kwargs["name"].endswith("[ground truth]")][0]
    expected = (hi - lo)[::-1] / (np.asarray(shape) - 1)
    np.testing.assert_allclose(truth["scale"], expected)
    assert truth["units"] == "m"


def test_bad_and_foreign_files(tmp_path):
    broken = write_valid_file("ct-parallel/1", tmp_path / "broken.h5", angles=None)
    with pytest.raises(UserError, match="angles"):
        read_layers(broken)
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    assert get_reader(str(foreign)) is None  # left to other readers
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    assert get_reader(str(garbage)) is not None  # ours to explain


def test_reader_turns_a_bad_file_into_a_notification(tmp_path):
    from napari.utils.notifications import notification_manager

    broken = write_valid_file("ct-parallel/1", tmp_path / "broken.h5", angles=None)
    with notification_manager:
        before = len(notification_manager.records)
        assert get_reader(str(broken))(str(broken)) == NOTHING_READ
        messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("broken.h5" in m and "angles" in m for m in messages)


def test_writer_round_trip_keeps_data_provenance_and_scale(tmp_path):
    rng = np.random.default_rng(2)
    volume = rng.random((3, 16, 16)).astype(np.float32)
    source = write_reconstruction(tmp_path / "a.h5", volume, attrs={
        "method": "cgls", "params": {"iterations": 7}, "source": "m.h5 slices 0:3", "command": "recon ...",
        "device": "cpu", "elapsed_s": 2.5, "seed": 4, "psnr": 30.0, "voxel_size": [2.0, 1.0, 1.0], "unit": "mm"})
    data, kwargs, _ = read_layers(source)[0]
    kwargs = {**kwargs, "units": (kwargs["units"],) * 3}  # napari hands the writer one unit per axis
    out = tmp_path / "b.h5"
    assert write_image(str(out), data, kwargs) == [str(out)]
    image, attrs = read_reconstruction(out)
    _, original = read_reconstruction(source)
    np.testing.assert_array_equal(image, volume)
    for key in ("method", "params", "source", "seed", "psnr", "voxel_size", "unit", "display_min", "display_max"):
        assert attrs[key] == original[key], key
    with pytest.raises(UserError, match="exists"):
        write_image(str(out), data, kwargs)


def test_writer_saves_a_plain_layer_and_refuses_measurements(tmp_path):
    image = np.arange(256, dtype=np.float32).reshape(16, 16)
    out = tmp_path / "plain.h5"
    write_image(str(out), image, {"name": "drawn", "scale": [1.0, 1.0], "contrast_limits": [0, 255]})
    _, attrs = read_reconstruction(out)
    assert attrs["method"] == "napari-layer" and attrs["source"] == "drawn"
    assert json.loads(json.dumps(attrs["params"])) == {}
    with pytest.raises(UserError, match="4 dimensions"):
        write_image(str(tmp_path / "k.h5"), np.zeros((2, 2, 4, 4)), {"name": "kspace"})


def test_measurement_layers_go_first_and_hide_on_request(tmp_path):
    from recon_napari.layers import measurements_below

    reconstruction = read_layers(write_valid_file("reconstruction/1", tmp_path / "r.h5"))
    measurement = read_layers(write_valid_file("ct-parallel/1", tmp_path / "m.h5"))
    ordered = measurements_below(reconstruction + measurement)
    assert ordered[0][1]["name"] == "m [sinogram]" and ordered[0][1]["visible"]
    names = [layer[1]["name"] for layer in ordered[1:]]
    assert names == [layer[1]["name"] for layer in reconstruction + measurement[1:]]
    hidden = measurements_below(measurement, hide=True)
    assert not hidden[0][1]["visible"] and hidden[1:] == measurement[1:]
