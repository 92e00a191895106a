"""The plugin in a real napari viewer (under Xvfb): open every spec, run and cancel reconstructions, compare."""

import numpy as np
import pytest
from make_files import write_valid_file

from recon.metrics import quality
from recon.phantoms import shepp_logan_3d
from recon_napari._compare_widget import CompareWidget
from recon_napari._reconstruct_widget import ReconstructWidget

from .conftest import SPECS

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _messages(since: int) -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records[since:]]


def _n_records() -> int:
    from napari.utils.notifications import notification_manager

    return len(notification_manager.records)


@pytest.mark.parametrize("spec", SPECS)
def test_viewer_opens_every_spec(viewer, spec, tmp_path):
    path = write_valid_file(spec, tmp_path / "f.h5")
    layers = viewer.open(str(path), plugin="recon")
    assert layers and all(layer.name.startswith("f [") for layer in layers)
    first = layers[0]
    assert first.visible and first.contrast_limits[1] > first.contrast_limits[0]


def test_manifest_contributions_are_found(viewer):
    import npe2

    manifest = npe2.PluginManager.instance().get_manifest("recon")
    assert {w.display_name for w in manifest.contributions.widgets} == {"Reconstruct", "Compare"}
    assert {s.key for s in manifest.contributions.sample_data} == {"phantom", "ct", "mri"}
    _, widget = viewer.window.add_plugin_dock_widget("recon", "Reconstruct")
    assert "fbp" in widget.method.choices and "tv" in widget.method.choices


def _run_widget(qtbot, widget: ReconstructWidget, timeout_ms: int = 120_000) -> None:
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout_ms)


def test_widget_runs_fbp_on_a_layer_and_adds_the_result(viewer, qtbot, ct_measurement):
    viewer.open(str(ct_measurement), plugin="recon")
    widget = ReconstructWidget(viewer)
    assert widget.layer.value is not None and widget.layer.value.name == "phantom_ct [sinogram]"
    widget.method.value = "fbp"
    assert [w.name for w in widget.params] == [p.name for p in __import__("recon.methods").methods.get_method(
        "fbp").params]
    _run_widget(qtbot, widget)
    result = viewer.layers["phantom_ct [fbp]"]
    assert result.data.shape == (8, 64, 64) and result.axis_labels == ("z", "y", "x")
    psnr = quality(np.asarray(result.data), shepp_logan_3d(64, 8))["psnr"]
    assert psnr > 17.0  # 30-view FBP of a 64^2 phantom at 1% noise: about 19 dB
    assert abs(psnr - widget.last_outcome.attrs["psnr"]) < 1e-3
    assert widget.progress.value == widget.progress.max


def test_widget_parameters_and_saving(viewer, qtbot, ct_measurement, tmp_path):
    widget = ReconstructWidget(viewer)
    widget.file.value = str(ct_measurement)
    widget.method.value = "cgls"
    widget.params["iterations"].value = 3
    widget.slices.value = "2:4"
    widget.save.value = str(tmp_path / "cgls.h5")
    _run_widget(qtbot, widget)
    assert viewer.layers["phantom_ct [cgls]"].data.shape == (2, 64, 64)
    from recon.io.reconstruction import read_reconstruction

    image, attrs = read_reconstruction(tmp_path / "cgls.h5")
    assert image.shape == (2, 64, 64) and attrs["params"]["iterations"] == 3
    assert attrs["source"].endswith("slices 2:4")


def test_cancel_stops_a_long_run(viewer, qtbot, ct_measurement):
    widget = ReconstructWidget(viewer)
    widget.file.value = str(ct_measurement)
    widget.method.value = "tv"
    widget.params["iterations"].value = 100_000
    before = _n_records()
    widget.start()
    qtbot.waitUntil(lambda: widget.progress.value >= 2, timeout=60_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert widget.status.value.startswith("cancelled")
    assert widget.progress.value < 1000
    assert not any("[tv]" in layer.name for layer in viewer.layers)
    assert any("cancelled" in m for m in _messages(before))
    assert widget.run_button.enabled


def test_bad_file_gives_a_notification_not_a_crash(viewer, qtbot, tmp_path):
    broken = write_valid_file("ct-parallel/1", tmp_path / "broken.h5", angles=None)
    before = _n_records()
    assert viewer.open(str(broken), plugin="recon") == []
    assert any("broken.h5" in m and "angles" in m for m in _messages(before))

    widget = ReconstructWidget(viewer)
    widget.file.value = str(broken)
    widget.method.value = "fbp"
    before = _n_records()
    _run_widget(qtbot, widget)
    assert any("broken.h5" in m and "angles" in m for m in _messages(before))
    assert widget.status.value.startswith("error:")

    widget.file.value = ""
    before = _n_records()
    widget.start()  # nothing chosen: told so, nothing runs
    assert widget.worker is None and any("no measurement" in m for m in _messages(before))


def test_compare_grid_difference_and_scores(viewer, qtbot, ct_measurement):
    viewer.open(str(ct_measurement), plugin="recon")
    widget = ReconstructWidget(viewer)
    for name in ("fbp", "cgls"):
        widget.method.value = name
        _run_widget(qtbot, widget)
    compare = CompareWidget(viewer)
    fbp, cgls = viewer.layers["phantom_ct [fbp]"], viewer.layers["phantom_ct [cgls]"]
    assert compare.reference.value is not None and compare.reference.value.name.endswith("[ground truth]")
    compare.layers.value = [fbp, cgls]
    compare.compare()
    assert viewer.canvas.grid.enabled and fbp.visible and cgls.visible
    assert not viewer.layers["phantom_ct [sinogram]"].visible
    assert set(compare.scores) == {fbp.name, cgls.name}
    stored = {name: viewer.layers[name].metadata["recon"]["attrs"]["psnr"] for name in compare.scores}
    for name, scores in compare.scores.items():
        assert scores["psnr"] == pytest.approx(stored[name], abs=1e-3)
    compare.mode.value = "difference"
    compare.compare()
    difference = viewer.layers[f"{cgls.name} - {fbp.name}"]
    np.testing.assert_allclose(np.asarray(difference.data), np.asarray(cgls.data) - np.asarray(fbp.data))
    assert not viewer.canvas.grid.enabled


def test_sample_data_opens_and_reconstructs(viewer, qtbot):
    viewer.open_sample("recon", "ct")
    assert "shepp_logan_ct [sinogram]" in [layer.name for layer in viewer.layers]
    widget = ReconstructWidget(viewer)
    widget.method.value = "fbp"
    widget.slices.value = "7:9"
    _run_widget(qtbot, widget)
    assert viewer.layers["shepp_logan_ct [fbp]"].data.shape == (2, 128, 128)


def test_radar_reconstruction_opens_with_a_range_mip_in_metres(viewer, tmp_path):
    from recon.io.reconstruction import write_reconstruction

    rng = np.random.default_rng(2)
    volume = (rng.standard_normal((6, 8, 10)) + 1j * rng.standard_normal((6, 8, 10))).astype(np.complex64)
    volume[4, 3, 5] = 20  # the brightest voxel, at range index 4: the projection must find it
    path = write_reconstruction(tmp_path / "radar.h5", volume, attrs={
        "method": "mimo-pnp", "params": {}, "source": "m.h5", "command": "t", "device": "cpu", "elapsed_s": 0.1,
        "seed": 0, "axes": "z,y,x", "voxel_size": [0.00625, 0.0125, 0.0125], "unit": "m"})
    layers = {layer.name: layer for layer in viewer.open(str(path), plugin="recon")}
    volume_layer, mip = layers["radar [mimo-pnp]"], layers["radar [mimo-pnp MIP]"]
    assert volume_layer.ndim == 3 and volume_layer.axis_labels[0] == "z (range)"
    assert mip.ndim == 2 and not mip.visible
    np.testing.assert_allclose(np.asarray(mip.data), np.abs(volume).max(axis=0), rtol=1e-6)
    assert float(np.asarray(mip.data)[3, 5]) == pytest.approx(20)
    np.testing.assert_allclose(mip.scale, [0.0125, 0.0125])
    assert str(mip.units[0]) == "meter"


def test_dynamic_reconstruction_plays_as_a_time_series(viewer, tmp_path):
    from recon.io.reconstruction import write_reconstruction

    frames = np.stack([np.full((16, 16), t, np.float32) for t in range(12)])  # frame t holds the value t
    path = write_reconstruction(tmp_path / "walnut.h5", frames, attrs={
        "method": "red-psm", "params": {}, "source": "m.h5", "command": "t", "device": "cpu", "elapsed_s": 0.1,
        "seed": 0, "axes": "t,y,x"})
    layer = viewer.open(str(path), plugin="recon")[0]
    assert layer.axis_labels[0] == "t" and viewer.dims.axis_labels[0] == "t"
    assert viewer.dims.nsteps[0] == 12  # the frame slider
    viewer.dims.set_current_step(0, 7)
    assert float(np.asarray(layer._slice.image.view).mean()) == pytest.approx(7)


def _settings_file(settings) -> str:
    return settings.config_path.read_text() if settings.config_path.exists() else ""


def test_recon_view_opens_h5_files_without_the_choose_reader_dialog(napari_settings, viewer, tmp_path):
    from napari.errors import MultipleReaderError

    from recon_napari.view import recon_reads_hdf5

    path = write_valid_file("ct-parallel/1", tmp_path / "f.h5")
    readers = napari_settings.plugins
    before = dict(readers.extension2reader)
    saved = _settings_file(napari_settings)
    with pytest.raises(MultipleReaderError):  # File > Open passes plugin=None; napari then asks which reader
        viewer.open(str(path), plugin=None)
    with recon_reads_hdf5():
        layers = viewer.open(str(path), plugin=None)  # the session's preference picks recon's reader
        assert layers and layers[0].name == "f [sinogram]"
        assert "recon" not in _settings_file(napari_settings)  # the user's settings file is not written
    assert dict(readers.extension2reader) == before
    assert _settings_file(napari_settings) == saved


def test_recon_view_keeps_a_users_own_reader_choice(napari_settings, viewer):
    from recon_napari.view import recon_reads_hdf5

    readers = napari_settings.plugins
    readers.extension2reader = {**readers.extension2reader, "*.h5": "napari"}
    with recon_reads_hdf5():
        assert readers.extension2reader["*.h5"] == "napari" and readers.extension2reader["*.hdf5"] == "recon"
    assert readers.extension2reader["*.h5"] == "napari" and "*.hdf5" not in readers.extension2reader


def test_a_measurement_opened_after_its_reconstruction_does_not_cover_it(viewer, tmp_path):
    reconstruction = write_valid_file("reconstruction/1", tmp_path / "r.h5")
    measurement = write_valid_file("ct-parallel/1", tmp_path / "m.h5")
    viewer.open(str(reconstruction), plugin="recon")
    added = viewer.open(str(measurement), plugin="recon")
    sinogram = next(layer for layer in added if layer.name == "m [sinogram]")
    assert not sinogram.visible
    shown = [layer for layer in viewer.layers if layer.visible]
    assert [layer.name for layer in shown] == ["r [fbp]"]


def test_a_measurement_opened_first_stays_below_and_visible(viewer, tmp_path):
    from recon_napari.view import measurements_first

    reconstruction = write_valid_file("reconstruction/1", tmp_path / "r.h5")
    measurement = write_valid_file("ct-parallel/1", tmp_path / "m.h5")
    for path in measurements_first([reconstruction, measurement]):  # what `recon view r.h5 m.h5` does
        viewer.open(str(path), plugin="recon")
    names = [layer.name for layer in viewer.layers if layer.visible]
    assert names == ["m [sinogram]", "r [fbp]"]  # the last one is drawn on top
