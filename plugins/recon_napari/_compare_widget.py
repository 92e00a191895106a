"""The Compare dock widget: reconstructions of one measurement side by side or as differences, with scores.

Pick two or more image layers, a mode (grid: one cell per layer, cameras linked; difference: a layer
``A - B`` for each against the first) and, when a ground truth is open (a ``[ground truth]`` layer comes
with files that have one), a PSNR/SSIM table against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, Select, Table

from recon.metrics import quality

if TYPE_CHECKING:
    import napari

MODES = ("side by side", "difference")
COLUMNS = ("PSNR (dB)", "SSIM")


def _image_layers(viewer: napari.Viewer) -> list:
    return [layer for layer in viewer.layers if layer._type_string == "image" and not layer.rgb]


def _kind(layer) -> str | None:
    return layer.metadata.get("recon", {}).get("kind")


def _is_truth(layer) -> bool:
    return _kind(layer) == "ground_truth"


class CompareWidget(Container):
    """Dock widget: grid or difference view of chosen reconstructions, PSNR/SSIM against a reference."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layers = Select(label="reconstructions", choices=self._candidates)
        self.reference = ComboBox(label="ground truth", nullable=True, choices=self._references,
                                  tooltip="image to score against (a [ground truth] layer is chosen when open)")
        self.mode = ComboBox(label="mode", choices=list(MODES), value=MODES[0])
        self.compare_button = PushButton(text="Compare")
        self.table = Table(columns=COLUMNS)
        self.status = Label(value="")
        self.extend([self.layers, self.reference, self.mode, self.compare_button, self.table, self.status])
        self.scores: dict[str, dict[str, float]] = {}
        self.compare_button.changed.connect(self.compare)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh)
        self._refresh()

    def _candidates(self, _=None) -> list:
        return [(layer.name, layer) for layer in _image_layers(self.viewer)
                if _kind(layer) not in ("ground_truth", "measurement")]

    def _references(self, _=None) -> list:
        layers = _image_layers(self.viewer)
        return [(layer.name, layer) for layer in sorted(layers, key=lambda layer: not _is_truth(layer))]

    def _refresh(self, _=None) -> None:
        self.layers.reset_choices()
        self.reference.reset_choices()
        truths = [layer for layer in _image_layers(self.viewer) if _is_truth(layer)]
        if truths and self.reference.value is None:
            self.reference.value = truths[0]

    def compare(self) -> None:
        """Apply the chosen mode to the chosen layers and fill the score table."""
        from napari.utils.notifications import show_error

        chosen = list(self.layers.value)
        if len(chosen) < 2 and not (chosen and self.reference.value is not None):
            show_error("recon: choose at least two reconstructions (or one and a ground truth) to compare")
            return
        shapes = {tuple(layer.data.shape) for layer in chosen}
        if len(shapes) > 1:
            show_error(f"recon: the chosen layers differ in shape ({', '.join(map(str, shapes))}); "
                       "compare reconstructions of the same measurement")
            return
        if self.mode.value == "side by side":
            self.side_by_side(chosen)
        else:
            self.differences(chosen)
        self.score(chosen)

    def side_by_side(self, chosen: list) -> None:
        """Grid mode with only the chosen layers (and the reference) visible, in one cell each."""
        shown = chosen + ([self.reference.value] if self.reference.value is not None else [])
        for layer in self.viewer.layers:
            layer.visible = layer in shown
        self.viewer.canvas.grid.enabled = True
        self.viewer.canvas.grid.shape = (1, len(shown)) if len(shown) <= 4 else (-1, -1)
        self.viewer.reset_view()
        self.status.value = f"grid of {len(shown)} layers"

    def differences(self, chosen: list) -> None:
        """A layer ``B - A`` for each chosen layer B after the first, A, on a symmetric colour scale."""
        self.viewer.canvas.grid.enabled = False
        first = chosen[0]
        for layer in chosen[1:]:
            difference = layer.data - first.data
            bound = float(max(abs(first.contrast_limits[0]), abs(first.contrast_limits[1]))) / 4 or 1.0
            self.viewer.add_image(difference, name=f"{layer.name} - {first.name}", colormap="PiYG",
                                  contrast_limits=[-bound, bound], scale=first.scale, axis_labels=first.axis_labels)
        self.status.value = f"{len(chosen) - 1} difference layer(s)"

    def score(self, chosen: list) -> None:
        """PSNR/SSIM of each chosen layer against the reference (reads both fully)."""
        from napari.utils.notifications import show_error

        reference = self.reference.value
        self.scores = {}
        if reference is None:
            self.table.value = {"data": [], "index": [], "columns": COLUMNS}
            return
        truth = np.asarray(reference.data)
        for layer in chosen:
            if tuple(layer.data.shape) != truth.shape:
                show_error(f"recon: {layer.name} is {layer.data.shape}, its reference {truth.shape}; not scored")
                continue
            self.scores[layer.name] = quality(np.asarray(layer.data), truth, images=truth.ndim >= 2)
        rows = [[round(s.get("psnr", float("nan")), 2), round(s.get("ssim", float("nan")), 4)]
                for s in self.scores.values()]
        self.table.value = {"data": rows, "index": list(self.scores), "columns": COLUMNS}
