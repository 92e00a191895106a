"""Clean training images from files in the field's layouts (:mod:`recon.io.layouts`), read as recon reads them.

- a measurement with a ground truth (fastMRI training files' ``reconstruction_rss``/``reconstruction_esc``, a
  LoDoPaB observation whose ground-truth file lies beside it): that ground truth, as the reader serves it
  (cropped to reconSpace, in recon's axes);
- a ground-truth file of its own (LoDoPaB's ``ground_truth_*.hdf5``): its images, turned into recon's axes;
- fully sampled Cartesian k-space without a ground truth (fastMRI or ISMRMRD): the root-sum-of-squares coil
  combination of the centred orthonormal inverse FFT, cropped to reconSpace (what fastMRI's
  ``reconstruction_rss`` is);
- anything else (undersampled k-space without a ground truth, raw projections): UserError naming what to give.

Files in no foreign layout (recon files, plain HDF5 with a key) are left to :func:`recon.io.volumes.load_volume`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recon.errors import UserError


def layout_of(path: str | Path) -> tuple[str | None, str]:
    """``(layout, role)`` of a foreign-layout HDF5 file (see :func:`recon.io.layouts.role`); ``(None, "")`` for any
    other path (a recon file, plain HDF5, another format, ``FILE.h5:KEY``)."""
    import h5py

    from recon.io.layouts import role

    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return None, ""
    layout, kind = role(path)
    return (layout, kind) if layout not in (None, "recon") else (None, "")


def rss_image(kspace: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """Root-sum-of-squares over coils of the centred orthonormal inverse FFT of ``kspace`` (S, C, ny, nx), centre
    cropped to ``crop``: float32 (S, *crop)."""
    from recon.physics.masks import centre_slice

    axes = (-2, -1)
    coils = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), norm="ortho"), axes=axes)
    rss = np.sqrt((np.abs(coils) ** 2).sum(axis=1))
    return rss[:, centre_slice(rss.shape[1], crop[0]), centre_slice(rss.shape[2], crop[1])].astype(np.float32)


def _how(measurement, layout: str, path: str | Path) -> tuple[str, str]:
    """How the images of an open foreign-layout ``measurement`` are read (``ground_truth`` or ``rss``) and a line
    saying what they are; reads nothing; UserError when it holds no clean images."""
    mri = measurement.spec.id == "mri-cartesian/1"
    if measurement.has("ground_truth"):
        what = getattr(measurement, "truth_key", None) or "the paired ground-truth file"
        return "ground_truth", f"{layout} file: its ground truth ({what})"
    if mri and not measurement.undersampled():
        return "rss", f"{layout} file: root-sum-of-squares coil combination of its fully sampled k-space"
    fix = ("give fully sampled files or files with a ground truth (fastMRI's training and validation files)" if mri
           else "give its ground-truth file, or reconstruct it first (recon reconstruct or recon batch) and train on "
                "the reconstructions")
    raise UserError(f"a {layout} file with no clean images to train on (no ground truth"
                    + (", undersampled k-space)" if mri else ")"), path=path, key="--data", fix=fix)


def describe_source(path: str | Path) -> str:
    """What training reads from ``path``, a file in a foreign layout (for the weights' card)."""
    from recon.io.layouts import open_measurement

    layout, kind = layout_of(path)
    if kind == "ground_truth":
        return f"{layout} ground-truth file"
    with open_measurement(path) as measurement:
        return _how(measurement, layout, path)[1]


def layout_images(path: str | Path) -> np.ndarray:
    """The clean images (z, y, x) float32 of a file in a foreign layout (see the module), read slice by slice."""
    from recon.io.layouts import LAYOUTS, open_h5, open_measurement

    layout, kind = layout_of(path)
    if kind == "ground_truth":
        with open_h5(path) as file:
            data = file["data"]
            return LAYOUTS[layout].ground_truth_images(data, 0, data.shape[0]).astype(np.float32)
    with open_measurement(path) as measurement:
        if _how(measurement, layout, path)[0] == "ground_truth":
            return measurement.read("ground_truth")
        crop = tuple(measurement.attrs["crop"])
        return np.concatenate([rss_image(measurement.read("kspace", slice(i, i + 1)), crop)
                               for i in range(measurement.n_slices)])


def drop_paired_measurements(paths: list[Path]) -> list[Path]:
    """``paths`` without the measurements whose ground-truth file is listed too (LoDoPaB's observation files
    beside their ground truth): their images would count twice."""
    from recon.io.layouts import LAYOUTS

    listed = {Path(p).resolve() for p in paths}
    drop = set()
    for path in paths:
        layout, kind = layout_of(path)
        partner = getattr(LAYOUTS.get(layout or ""), "partner", lambda _: None)(path) if kind == "ground_truth" \
            else None
        if partner is not None and partner.resolve() in listed:
            drop.add(partner.resolve())
    return [p for p in paths if Path(p).resolve() not in drop]
