"""The Reconstruct dock widget: a measurement (file or layer), a method, its prior and parameters, a device.

Methods, priors and parameter forms come from recon's registries, so a new method (or a third-party one
installed through the ``recon.methods`` entry point) appears here without changes. The run goes through
:func:`recon.pipeline.compute` (the CLI's checks and code) on a worker thread; the progress bar follows the
solver's steps and Cancel stops it at the next step. The result is added as layers named
``<file> [<method>]``; errors show the CLI's one-line message as a notification.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import torch
from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, ProgressBar, PushButton, SpinBox
from napari.layers import Layer
from qtpy.QtCore import QObject, Signal

from recon.errors import ComputationFailed, UserError
from recon.io.reconstruction import display_range, write_reconstruction
from recon.methods import all_methods, compatible_priors, get_method
from recon.params import Param
from recon.pipeline import Outcome, Request, compute
from recon.progress import Cancelled, callback_progress
from recon_napari.layers import reconstruction_layers

if TYPE_CHECKING:
    import napari

INT_LIMIT = 2**31 - 1  # Qt spin boxes hold 32-bit integers


def param_widget(param: Param):
    """A form field for one method parameter: choices -> combo box, bool -> check box, int with a fixed default
    -> spin box, anything else -> text (empty means the method's default; the text is parsed like ``--set``)."""
    common = {"name": param.name, "label": param.name, "tooltip": param.help}
    if param.choices:
        return ComboBox(choices=list(param.choices), value=param.default, **common)
    if param.kind is bool:
        return CheckBox(value=bool(param.default), **common)
    if param.kind is int and isinstance(param.default, int):  # a per-spec or "auto" default stays text
        low = int(param.low) if param.low is not None else -INT_LIMIT
        high = int(min(param.high, INT_LIMIT)) if param.high is not None else INT_LIMIT
        return SpinBox(value=param.default, min=low, max=high, **common)
    return LineEdit(value="" if param.default is None else str(param.default), **common)


def measurement_layers(viewer: napari.Viewer) -> list:
    """Layers read from measurement files (their metadata names the file), one per file."""
    seen, layers = set(), []
    for layer in viewer.layers:
        info = layer.metadata.get("recon", {})
        if info.get("kind") == "measurement" and info.get("path") and info["path"] not in seen:
            seen.add(info["path"])
            layers.append(layer)
    return layers


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    progressed = Signal(str, int, int)


class ReconstructWidget(Container):
    """Dock widget: reconstruct a measurement with any registered method, off the GUI thread."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer = ComboBox(label="measurement layer", nullable=True,
                              choices=lambda _: [(layer.name, layer) for layer in measurement_layers(self.viewer)],
                              tooltip="a layer opened from a measurement file (the file is what is reconstructed)")
        self.file = LineEdit(label="or file", tooltip="path of a measurement .h5 file; used instead of the layer")
        self.method = ComboBox(label="method", choices=sorted(m.name for m in all_methods()))
        self.prior = ComboBox(label="prior", choices=[])
        self.params = Container(labels=True)
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        self.device = ComboBox(label="device", choices=devices, value="auto")
        self.slices = LineEdit(label="slices", tooltip="a:b to reconstruct slices a..b-1 only (empty: all)")
        self.save = LineEdit(label="save to", tooltip="optional .h5 path for a reconstruction/1 file")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="")
        self.extend([self.layer, self.file, self.method, self.prior, self.params, self.device, self.slices,
                     self.save, self.run_button, self.cancel_button, self.progress, self.status])

        self.worker = None
        self.last_outcome: Outcome | None = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self.method.changed.connect(self._on_method)
        self.layer.changed.connect(self._on_source)
        self.file.changed.connect(self._on_source)
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()
        self._on_source()
        self._on_method(self.method.value)

    def _refresh_layers(self, _=None) -> None:
        """Offer the measurement layers now open; pick the first when none is chosen."""
        self.layer.reset_choices()
        if self.layer.value is None and len(self.layer.choices) > 1:
            self.layer.value = self.layer.choices[1]

    def _source_spec(self) -> str | None:
        """The spec of the chosen measurement (file or layer), None when unknown or unreadable."""
        path = self.file.value.strip()
        if path:
            try:
                with h5py.File(path, "r") as file:
                    return str(file.attrs.get("recon_spec", "")) or None
            except OSError:
                return None
        return self.layer.value.metadata["recon"]["spec"] if self.layer.value is not None else None

    def _on_source(self, _=None) -> None:
        """Offer only the methods that accept the chosen measurement's spec (all when it is unknown)."""
        spec = self._source_spec()
        names = sorted(m.name for m in all_methods() if spec is None or spec in m.specs)
        current = self.method.value
        self.method.choices = names or sorted(m.name for m in all_methods())
        preferred = [name for name in (current, "fbp", "adjoint") if name in self.method.choices]
        self.method.value = preferred[0] if preferred else self.method.choices[0]

    def _on_method(self, name: str) -> None:
        """Rebuild the prior list and the parameter form for method ``name``."""
        method = get_method(name)
        priors = compatible_priors(method, self._source_spec())
        self.prior.choices = priors
        if method.default_prior in priors:
            self.prior.value = method.default_prior
        self.prior.enabled = bool(priors)
        self.params.clear()
        self.params.extend([param_widget(param) for param in method.params])

    def request(self) -> Request:
        """The run the form describes; UserError when no measurement is chosen."""
        path = self.file.value.strip()
        if not path and self.layer.value is not None:
            path = self.layer.value.metadata["recon"]["path"]
        if not path:
            raise UserError("no measurement chosen", key="measurement",
                            fix="open a measurement file (File > Open) and pick its layer, or type a file path")
        raw: dict[str, Any] = {}
        for widget in self.params:
            value = widget.value
            if not (isinstance(value, str) and value.strip() == ""):
                raw[widget.name] = value.strip() if isinstance(value, str) else value
        return Request(input=Path(path), method=self.method.value, params=raw,
                       prior=self.prior.value if self.prior.enabled else None, device=self.device.value,
                       slices=self.slices.value.strip() or None, command="napari: recon Reconstruct widget")

    def start(self) -> None:
        """Check the form and start the run on a worker thread (errors become notifications)."""
        from napari.qt.threading import create_worker

        try:
            request = self.request()
        except UserError as error:
            self._notify_error(error)
            return
        save = Path(self.save.value.strip()) if self.save.value.strip() else None
        self._cancel.clear()
        progress = callback_progress(lambda desc, done, total, fields: self._relay.progressed.emit(desc, done, total),
                                     self._cancel)
        # expected failures come back as values; anything else is an internal error, which napari's worker
        # shows as an error notification with its traceback (and _on_internal_error puts in the status line)
        self.worker = create_worker(_run, request, save, progress, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(self._on_internal_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = f"running {request.method} on {request.input.name} ..."
        self.worker.start()

    def cancel(self) -> None:
        """Ask the run to stop at its next iteration."""
        self._cancel.set()
        self.status.value = "cancelling ..."

    def _on_progress(self, description: str, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        self.progress.label = description

    def _on_done(self, outcome: Outcome | Failure) -> None:
        if isinstance(outcome, Failure):
            self._notify_error(outcome.error)
            return
        self.last_outcome = outcome
        self.progress.value = self.progress.max
        arrays = {"reconstruction": outcome.image, **outcome.datasets}
        name = Path(outcome.attrs["source"].split(" slices ")[0]).stem
        for data, kwargs, kind in reconstruction_layers(arrays, outcome.attrs, name, path=None):
            if kwargs["name"] not in self.viewer.layers:  # e.g. the ground truth, already open with the file
                self.viewer.add_layer(Layer.create(data, kwargs, kind))
        self.status.value = outcome.summary.line()

    def _notify_error(self, error: Exception) -> None:
        from napari.utils.notifications import show_error, show_info

        if isinstance(error, Cancelled):
            self.status.value = f"cancelled: {error}"
            show_info(f"recon: {error}")
        else:
            self.status.value = f"error: {error}"
            show_error(f"recon: {error}")

    def _on_internal_error(self, error: Exception) -> None:
        self.status.value = f"internal error: {error.__class__.__name__}: {error}"

    def _on_finished(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.worker = None


@dataclass
class Failure:
    """A user error or a cancellation, returned by the worker (an exception returned as such would be
    treated as an internal error by the worker machinery)."""

    error: UserError | ComputationFailed | Cancelled


def _run(request: Request, save: Path | None, progress) -> Outcome | Failure:
    """Worker-thread body: compute, then (optionally) write the reconstruction file; a user error or a
    cancellation comes back as a Failure so the GUI thread shows it as the one line it is."""
    try:
        outcome = compute(request, save, progress)
    except (UserError, ComputationFailed, Cancelled) as error:
        return Failure(error)
    outcome.attrs["display_min"], outcome.attrs["display_max"] = display_range(outcome.image)
    if save is not None:
        write_reconstruction(save, outcome.image, attrs=outcome.attrs, datasets=outcome.datasets,
                             history=outcome.history, protect=outcome.sources)
        outcome.summary.output = save
    return outcome
