"""ISMRMRD HDF5 raw data (Cartesian 2D): the header through the ``ismrmrd`` package, the acquisitions with h5py in
the package's record layout (one selection per slice range rather than one ``read_acquisition`` call per line).

The layout (ISMRMRD, Inati et al. MRM 77:411, 2017): a group (``/dataset`` by convention) holding ``xml``, the XML
header (encodedSpace / reconSpace matrix sizes and fields of view, encoding limits, trajectory), and ``data``, one
record per acquisition: a header (flags, encoding counters ``idx``: kspace_encode_step_1, slice, average, contrast,
phase, repetition, set; number_of_samples, center_sample, discard_pre/post, active_channels) and the samples
(channels, number_of_samples), the readout usually oversampled 2x.

Each imaging acquisition of slice s and phase-encoding step e1 fills column e1 - center + encoded_y // 2 of the grid
(the encoding limits' centre on the grid centre, as fastMRI's padding_left) and rows encoded_x // 2 - center_sample
+ i (so that the echo centre is the DC row); repeated averages are averaged; reversed readouts (ACQ_IS_REVERSE)
are flipped. Noise, navigator, phase-correction, feedback, dummy and phase-stabilisation acquisitions are left out;
parallel-calibration lines are kept as measured k-space. Files with several contrasts, phases, repetitions or
sets need ``--read repetition=K`` (etc.) to choose one; non-Cartesian and 3D encodings are refused. The grid is then
read as ``mri-cartesian/1`` by :class:`~recon.io.layouts.cartesian.CartesianKSpaceFile` (readout -> ny,
kspace_encode_step_1 -> nx, readout oversampling removed when every acquired line covers the whole readout,
output cropped to reconSpace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.layouts.cartesian import INT_OPTIONS, SPEC, CartesianKSpaceFile, EncodingGeometry, parse_options
from recon.io.layouts.cartesian import OPTIONS as CARTESIAN_OPTIONS

NAME = "ismrmrd"
__all__ = ["NAME", "SPEC", "IsmrmrdFile", "detect", "open"]
COUNTERS = ("contrast", "phase", "repetition", "set")
"""Encoding counters of which one value is reconstructed (``--read NAME=K`` chooses it)."""
OPTIONS = {**CARTESIAN_OPTIONS, "dataset": "group holding xml and data [the only one]",
            **{name: f"which {name} to reconstruct [the only one]" for name in COUNTERS}}
_INTEGERS = {**INT_OPTIONS, **dict.fromkeys(COUNTERS, 0)}
_SKIPPED_FLAGS = ("ACQ_IS_NOISE_MEASUREMENT", "ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA",
                  "ACQ_IS_HPFEEDBACK_DATA", "ACQ_IS_DUMMYSCAN_DATA", "ACQ_IS_RTFEEDBACK_DATA",
                  "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA", "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
                  "ACQ_IS_PHASE_STABILIZATION")


def _groups(file: h5py.File) -> list[str]:
    """Top-level groups holding an ISMRMRD ``xml`` and a ``data`` table of acquisitions with headers."""
    found = []
    for name, group in file.items():
        if not isinstance(group, h5py.Group):
            continue
        data = group.get("data")
        if "xml" in group and isinstance(data, h5py.Dataset) and data.dtype.names and "head" in data.dtype.names:
            found.append(name)
    return found


def detect(file: h5py.File) -> bool:
    """A group with ``xml`` and a ``data`` table whose records have a ``head`` (acquisitions)."""
    return bool(_groups(file))


def open(path: str | Path, **options: Any) -> IsmrmrdFile:  # noqa: A001 (the layout protocol's name)
    """Open an ISMRMRD file; ``options``: the ``--read`` options of :mod:`recon.io.layouts.cartesian`, plus
    ``dataset`` and one of each of ``contrast``, ``phase``, ``repetition``, ``set``."""
    return IsmrmrdFile(path, **options)


class IsmrmrdFile(CartesianKSpaceFile):
    """An ISMRMRD file read lazily as ``mri-cartesian/1``; see the module."""

    layout = NAME
    title = "ISMRMRD raw data"

    def __init__(self, path: str | Path, **options: Any):
        try:
            import ismrmrd  # noqa: F401  (_index reads its acquisition flag constants)
        except ImportError:
            raise UserError("reading ISMRMRD files needs the ismrmrd package", path=path,
                            fix="pip install ismrmrd") from None
        options = parse_options(options, OPTIONS, path, _INTEGERS)
        file = h5py.File(path, "r")  # the one handle: groups, header and acquisitions
        try:
            group = self._group(file, path, options.get("dataset"))
            geometry = EncodingGeometry.from_xml(file[group]["xml"][0], path)  # as ismrmrd's read_xml_header
            self._check_geometry(geometry, path)
            self._records = file[group]["data"]
            self._index(self._records.fields("head")[:], geometry, options, path)
            source = (f"/{group}/data: {len(self._acquisitions)} imaging acquisitions of {self._n_coils} channels "
                      f"on a {geometry.encoded[0]} x {geometry.encoded[1]} encoded grid (readout, "
                      f"kspace_encode_step_1), {self._n_slices} slice(s)" + self._skipped_note)
            self._setup(path, file, geometry, self._n_slices, self._n_coils, options, source)
        except BaseException:
            file.close()
            raise

    @staticmethod
    def _group(file: h5py.File, path: str | Path, chosen: str | None) -> str:
        """The ISMRMRD group to read: ``chosen``, or the only one."""
        groups = _groups(file)
        if chosen is not None and chosen not in groups or chosen is None and len(groups) != 1:
            raise UserError(f"holds the ISMRMRD datasets {groups}", path=path, key="--read dataset",
                            fix=f"choose one with --read dataset={groups[0]}")
        return chosen or groups[0]

    @staticmethod
    def _check_geometry(geometry: EncodingGeometry, path: str | Path) -> None:
        if geometry.trajectory != "cartesian":
            raise UserError(f"the trajectory is {geometry.trajectory or 'not given'}; recon reads Cartesian data",
                            path=path, key="encoding/trajectory", fix="grid non-Cartesian data first (e.g. Gadgetron)")
        if geometry.encoded[2] > 1:
            raise UserError(f"a 3D encoding ({geometry.encoded[2]} partitions); recon reads 2D slices", path=path,
                            key="encodedSpace/matrixSize/z", fix="inverse-FFT along kspace_encode_step_2 into slices")

    def _index(self, heads: np.ndarray, geometry: EncodingGeometry, options: dict[str, Any],
               path: str | Path) -> None:
        """Choose the imaging acquisitions and where each goes on the grid, from their headers only."""
        import ismrmrd

        flags = heads["flags"].astype(np.uint64)
        skipped = np.zeros(len(heads), bool)
        for name in _SKIPPED_FLAGS:
            skipped |= (flags >> np.uint64(getattr(ismrmrd, name) - 1)) & np.uint64(1) == 1
        chosen = ~skipped
        for counter in COUNTERS:
            values = np.unique(heads["idx"][counter][chosen])
            if counter in options:
                if options[counter] not in values:
                    raise UserError(f"has no {counter} {options[counter]} (it has {values.tolist()})", path=path,
                                    key=f"--read {counter}", fix=f"choose one of {values.tolist()}")
                chosen &= heads["idx"][counter] == options[counter]
            elif len(values) > 1:
                raise UserError(f"has {len(values)} values of {counter} ({values.tolist()}) and recon reconstructs "
                                f"one", path=path, key=f"--read {counter}",
                                fix=f"choose one with --read {counter}={values[0]}")
        if not chosen.any():
            raise UserError("has no imaging acquisitions", path=path, key="data", fix="check the file")
        if (heads["idx"]["kspace_encode_step_2"][chosen] > 0).any():
            raise UserError("uses kspace_encode_step_2 (3D); recon reads 2D slices", path=path,
                            key="kspace_encode_step_2", fix="inverse-FFT along kspace_encode_step_2 into slices")
        channels = np.unique(heads["active_channels"][chosen])
        if len(channels) != 1:
            raise UserError(f"acquisitions have different channel counts {channels.tolist()}", path=path,
                            key="active_channels", fix="keep the acquisitions of one receiver configuration")
        rows, columns = geometry.encoded[:2]
        self._acquisitions = np.flatnonzero(chosen)
        head = heads[chosen]
        self._slice = head["idx"]["slice"].astype(int)
        self._column = head["idx"]["kspace_encode_step_1"].astype(int) + geometry.first_column()
        self._first_row = rows // 2 - head["center_sample"].astype(int)
        self._reverse = ((flags[chosen] >> np.uint64(ismrmrd.ACQ_IS_REVERSE - 1)) & np.uint64(1)) == 1
        self._keep = np.stack([head["discard_pre"], head["number_of_samples"] - head["discard_post"]], 1).astype(int)
        outside_rows = (self._first_row + self._keep[:, 0] < 0) | (self._first_row + self._keep[:, 1] > rows)
        if (self._column < 0).any() or (self._column >= columns).any() or outside_rows.any():
            raise UserError("acquisitions fall outside the encoded matrix of the header", path=path,
                            key="encodedSpace", fix="check encodedSpace, encodingLimits and center_sample")
        self._n_slices, self._n_coils = int(self._slice.max()) + 1, int(channels[0])
        self._grid = (rows, columns)
        self._skipped_note = f"; {int(skipped.sum())} non-imaging acquisitions left out" if skipped.any() else ""

    def _acquired(self, start: int, stop: int) -> np.ndarray:
        acquired = np.zeros((stop - start, *self._grid), bool)
        for i in np.flatnonzero((self._slice >= start) & (self._slice < stop)):
            first, (low, high) = self._first_row[i], self._keep[i]
            acquired[self._slice[i] - start, first + low:first + high, self._column[i]] = True
        return acquired[:1] if bool((acquired == acquired[:1]).all()) else acquired

    def _raw_kspace(self, start: int, stop: int) -> np.ndarray:
        """The acquisitions of slices start:stop placed on the grid. Their samples are read in one h5py selection
        of the ``data`` field (stored as ismrmrd's ``Dataset.read_acquisition`` reads them: float32 pairs,
        channels x samples), some 50 times faster than one ``read_acquisition`` call per line."""
        kspace = np.zeros((stop - start, self._n_coils, *self._grid), np.complex64)
        counts = np.zeros((stop - start, 1, *self._grid), np.int32)
        chosen = np.flatnonzero((self._slice >= start) & (self._slice < stop))
        records = self._records.fields("data")[self._acquisitions[chosen]] if len(chosen) else []
        for i, samples in zip(chosen, records, strict=True):
            data = samples.view(np.complex64).reshape(self._n_coils, -1)
            if self._reverse[i]:
                data = data[:, ::-1]
            first, (low, high) = self._first_row[i], self._keep[i]
            where = (self._slice[i] - start, slice(None), slice(first + low, first + high), self._column[i])
            kspace[where] += data[:, low:high]
            counts[where] += 1
        return (kspace / np.maximum(counts, 1)).astype(np.complex64)
