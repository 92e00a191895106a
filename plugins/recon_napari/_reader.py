"""napari reader for recon HDF5 files (any spec) and files in the layouts recon reads (LoDoPaB, DXchange, NXtomo:
``recon.io.layouts``), through :func:`recon_napari.layers.read_layers`.

It claims ``.h5``/``.hdf5``/``.nx``/``.nxs`` files that carry a ``recon_spec`` attribute or whose content a
layout recognises, and those HDF5 cannot open at all (so that the user hears why); other HDF5 files are left to
other readers. A bad file shows recon's one-line
error as a notification and opens nothing, rather than raising into the viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recon.errors import UserError
from recon_napari.layers import LayerData, measurements_below, read_layers

NOTHING_READ = [(None,)]
"""napari's sentinel for "read, but nothing to show" (an empty list would mean the reader failed)."""


def _claims(path: str | Path) -> bool:
    from recon.io.layouts import detect_layout

    if not str(path).endswith((".h5", ".hdf5", ".nx", ".nxs")):
        return False
    try:
        return detect_layout(path) is not None
    except UserError:
        return Path(path).is_file()


def _viewer_shows_a_reconstruction() -> bool:
    """Whether the current napari viewer shows a recon reconstruction (the layers read now will go above it)."""
    import napari

    viewer = napari.current_viewer()
    return viewer is not None and any(
        layer.visible and layer.metadata.get("recon", {}).get("kind") == "reconstruction" for layer in viewer.layers)


def read(path: str | list[str]) -> list[LayerData]:
    """The layers of one or more recon files; a file that fails gives a notification and no layers.

    Measurement layers never cover a reconstruction: napari puts each new layer on top, so they come first
    (below the reconstructions read in the same call), and open hidden when the viewer already shows one.
    """
    from napari.utils.notifications import show_error

    layers = []
    for one in [path] if isinstance(path, str) else path:
        try:
            layers.extend(read_layers(one))
        except UserError as error:
            show_error(f"recon: {error}")
    return measurements_below(layers, hide=_viewer_shows_a_reconstruction()) or NOTHING_READ


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The npe2 reader hook: :func:`read` for recon HDF5 files, None for anything else."""
    paths = [path] if isinstance(path, str) else path
    return read if paths and all(_claims(p) for p in paths) else None
