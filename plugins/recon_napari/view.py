"""``recon view FILES...``: a napari viewer with the files as layers and recon's widgets docked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

WIDGETS = ("Reconstruct", "Compare")


def open_viewer(files: Sequence[Path], *, ndisplay: int = 2, widgets: Sequence[str] = WIDGETS,
                screenshot: Path | None = None, size: tuple[int, int] = (1500, 950)) -> None:
    """Open ``files`` (recon HDF5) in a new viewer; with ``screenshot``, save the window as PNG and close
    instead of running the event loop (for scripts, docs and tests)."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(ndisplay=ndisplay, title="recon")
    for path in files:
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
