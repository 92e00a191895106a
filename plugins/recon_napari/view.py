"""``recon view FILES...``: a napari viewer with the files as layers and recon's widgets docked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import h5py

WIDGETS = ("Reconstruct", "Compare")
HDF5_PATTERNS = ("*.h5", "*.hdf5")


@contextmanager
def recon_reads_hdf5() -> Iterator[None]:
    """Within the block, napari opens ``.h5``/``.hdf5`` files with recon's reader without asking which reader to
    use (napari's own reader also claims these extensions, so File > Open would show a "Choose reader" dialog),
    unless the user has already chosen a reader for them.

    The choice lives in memory only: napari writes its settings file on every change, so saving is switched off
    (napari's ``_save_on_change``) while the preference is set and removed. Without that switch (another napari)
    nothing is changed and napari asks as usual. To make recon the default in plain napari, see the napari page
    of the docs (one setting, once).
    """
    from napari.settings import get_settings

    settings = get_settings()
    readers = settings.plugins
    ours = [pattern for pattern in HDF5_PATTERNS if pattern not in readers.extension2reader]
    if not ours or not hasattr(settings, "_save_on_change"):
        yield
        return

    def assign(mapping: dict[str, str]) -> None:
        saving = settings._save_on_change
        settings._save_on_change = False
        try:
            readers.extension2reader = mapping
        finally:
            settings._save_on_change = saving

    assign({**readers.extension2reader, **dict.fromkeys(ours, "recon")})
    try:
        yield
    finally:
        assign({key: value for key, value in readers.extension2reader.items()
                if not (key in ours and value == "recon")})


def measurements_first(files: Sequence[Path]) -> list[Path]:
    """``files`` with measurement files before reconstructions: napari stacks later layers on top, so the
    reconstructions stay visible above the measurements."""

    def is_reconstruction(path: Path) -> bool:
        with h5py.File(path, "r") as file:
            return file.attrs.get("recon_spec") == "reconstruction/1"

    return sorted(files, key=is_reconstruction)


def open_viewer(files: Sequence[Path], *, ndisplay: int = 2, widgets: Sequence[str] = WIDGETS,
                screenshot: Path | None = None, size: tuple[int, int] = (1500, 950)) -> None:
    """Open ``files`` (recon HDF5) in a new viewer; with ``screenshot``, save the window as PNG and close
    instead of running the event loop (for scripts, docs and tests)."""
    import napari
    from qtpy.QtWidgets import QApplication

    with recon_reads_hdf5():
        viewer = napari.Viewer(ndisplay=ndisplay, title="recon")
        for path in measurements_first(files):
            viewer.open(str(path), plugin="recon")
        for name in widgets:
            viewer.window.add_plugin_dock_widget("recon", name)
        if screenshot is None:
            napari.run()
            return
        viewer.window.resize(*size)
        QApplication.processEvents()
        viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
        viewer.close()
