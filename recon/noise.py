"""The noise level of a measurement file: from its attributes when it states them, else estimated from the data.

Every estimate is absolute, in the measurement's own unit: ``std`` is the root-mean-square standard deviation
of one measured value (for complex data E|n|^2 = std^2, split evenly between the real and imaginary parts, as
``recon simulate`` adds it), and ``sq_norms`` the expected squared norm of the noise of each slice's
measurements, what the discrepancy principle (:mod:`recon.parameter_choice`) compares residuals with.
``recon simulate --noise-std r`` adds noise of std r * RMS(noiseless measurements) (ct-dynamic: r * max);
:func:`relative_noise` turns an absolute level back into that relative figure.

This module holds the estimators, each on plain arrays (:func:`sinogram_noise`, :func:`kspace_noise`,
:func:`radar_noise`); a spec's kind (:class:`~recon.specs.SpecKind`, in its module in ``recon/specs/``) says which
one its files take, on which datasets, in which unit and whether slices are estimated apart: ``file_noise`` for
:func:`estimate_noise` (a file, in its unit), ``noise`` for :func:`problem_noise` (a built problem, in the unit of
its measurements). Where the kind has no such hook, the function raises a UserError.

Estimators, by kind of data (measured accuracy in docs/guides/parameters-from-data.md):

- CT (``ct-parallel``, ``ct-dynamic``), Gaussian noise: the median absolute deviation of the 4th-order
  differences along the detector (normalised to unit gain on white noise), / 0.6745, over the detector bins
  that see air: where |sinogram| < 3 times a first estimate from all bins. Outside the object's shadow the
  sinogram is noise alone; over all bins the signal's own fine structure (edges seen by a linear-interpolation
  projector) dominated at 0.1 % noise (estimates 2-6x too high on a head CT and Colin27; with the air bins
  within 10 %). Without at least ``MIN_AIR_BINS`` air bins it falls back to all bins (an overestimate where the
  signal's fine structure is comparable to the noise).
- CT with photon statistics (attributes ``noise_model: poisson``, ``photons`` = I0 per bin, unattenuated): the
  post-log value y = log(I0 / counts) has variance exp(y) / I0 per bin (the delta method), summed exactly.
  Without ``photons``, :func:`poisson_photons` estimates I0 from the noise in air, whose std is 1 / sqrt(I0).
- MRI (``mri-cartesian``, ``mri-dynamic``): per coil, the smaller of two upper bounds: (a) the lowest eigenvalues
  of the calibration matrix (all k x k patches of the fully sampled centre, all coils side by side), whose null
  space holds only noise because the coils see one image through smooth maps (the idea behind ESPIRiT and BART's
  ``estvar``), scaled by those of the same matrix built from unit white noise, with 5 x 5 patches or, where the
  calibration block is too small for them, 4 x 4 or 3 x 3 (:func:`calibration_kernel`); (b) the MAD of the
  sampled values in the outer corners of k-space. (a) is within about +15 % from 0.1 % to 10 % noise with 8
  coils (+20 % with 3 x 3 patches on a 64^2 grid); (b) only where the noise dominates the image's fine detail
  (10 %), where it trims (a)'s bias. One coil: (b) alone.
- Radar (``mimo-nearfield``): the file's ``noise_std``; there is no estimator from the data (the operator has
  fewer measurements than unknowns, so residuals can be driven to zero), so a file without it needs ``snr_db``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recon.errors import UserError
from recon.plugins import load_reference
from recon.specs import get_kind

MAD_TO_STD = 1 / 0.6744897501960817
"""std of a normal variable / median of its absolute value (the 0.75 quantile of N(0, 1))."""
DIFFERENCE_ORDER = 4
"""Order of the detector differences of the CT estimator: 2-6 measured alike once restricted to air bins; 4
suppresses the cubic trend of a shadow's edge (1st order: 4-18x too high at 0.1 % noise over all bins)."""
AIR_THRESHOLD = 3.0
MIN_AIR_BINS = 200
CALIBRATION_KERNEL = 5
"""Patch side of the MRI calibration matrix where the calibration block holds enough patches: 3 left too small a
null space with 4 coils (2-18x too high at 0.1 % noise), 6 and 7 measured no better than 5."""
MIN_CALIBRATION_KERNEL = 3
"""The smallest patch side tried where the block is too small for CALIBRATION_KERNEL (8 lines of a 64^2 grid at 4x
with 8 coils: a 5 x 5 kernel has 240 patch positions for 200 columns). With 8 coils, 4 x 4 and 3 x 3 read 1.12 to
1.20 times the true noise from 0.3 % to 10 %, where the outer-k-space bound alone read 1.06 to 6.7 times."""
LOW_EIGENVALUES = 0.1
"""Fraction of the calibration matrix's eigenvalues (the lowest) that estimate the noise."""
OUTER_KSPACE = 0.75
"""Corners of k-space used by the outer-k-space bound: |k_y| and |k_x| both >= this fraction of Nyquist."""


@dataclass(frozen=True)
class NoiseEstimate:
    """A noise level: ``std`` (RMS std of one measured value, file unit), ``sq_norms`` (expected ||noise||^2 of each
    slice's measurements, shape (S,)), where it comes from (``source`` "file" or "estimated"), how (``method``) and,
    for MRI, the per-coil std."""

    std: float
    sq_norms: np.ndarray
    source: str
    method: str
    per_coil: np.ndarray | None = None

    @property
    def norm(self) -> float:
        """Expected norm of the whole noise vector: the discrepancy principle's target (times its tau)."""
        return float(math.sqrt(self.sq_norms.sum()))

    def record(self) -> dict[str, object]:
        """What an output records of it (its params): the value, where it comes from and how."""
        return {"noise_std": self.std, "noise_source": self.source, "noise_method": self.method}


def mad_std(values: np.ndarray) -> float:
    """Robust std of zero-mean Gaussian values: median |v| / 0.6745 (0 for no values)."""
    values = np.abs(np.asarray(values).ravel())
    return float(np.median(values) * MAD_TO_STD) if values.size else 0.0


def detector_differences(sinogram: np.ndarray, order: int = DIFFERENCE_ORDER) -> np.ndarray:
    """``order``-th differences along the last (detector) axis, divided by the kernel's norm so that white noise
    keeps its std: shape (..., n_det - order)."""
    kernel = np.array([(-1) ** j * math.comb(order, j) for j in range(order + 1)], dtype=np.float64)
    kernel /= np.linalg.norm(kernel)
    n = sinogram.shape[-1] - order
    if n < 1:
        raise UserError(f"{sinogram.shape[-1]} detector bins are too few to estimate the noise", key="sinogram",
                        fix=f"give the noise level (attribute noise_std, or --set noise_std=...) for fewer than "
                            f"{order + 1} bins")
    data = np.asarray(sinogram, dtype=np.float64)
    return sum(weight * data[..., j:j + n] for j, weight in enumerate(kernel))


def _air_bins(sinogram: np.ndarray, first: float, order: int = DIFFERENCE_ORDER) -> np.ndarray:
    """Bool mask (..., n_det - order) of difference stencils whose bins all read |y| < AIR_THRESHOLD * first."""
    small = np.abs(sinogram) < AIR_THRESHOLD * first
    n = sinogram.shape[-1] - order
    inside = np.ones((*sinogram.shape[:-1], n), dtype=bool)
    for j in range(order + 1):
        inside &= small[..., j:j + n]
    return inside


def air_noise_std(sinogram: np.ndarray) -> float | None:
    """Noise std over the detector bins that see air (see the module); None when fewer than MIN_AIR_BINS do."""
    differences = detector_differences(sinogram)
    air = _air_bins(sinogram, mad_std(differences))
    return mad_std(differences[air]) if air.sum() >= MIN_AIR_BINS else None


def sinogram_noise_std(sinogram: np.ndarray) -> tuple[float, str]:
    """(std, how) of white Gaussian noise on a post-log sinogram (..., n_views, n_det): see the module."""
    air = air_noise_std(sinogram)
    if air is not None:
        return air, f"MAD of detector differences (order {DIFFERENCE_ORDER}) over air bins"
    return mad_std(detector_differences(sinogram)), (f"MAD of detector differences (order {DIFFERENCE_ORDER}), "
                                                     "all bins (no air seen)")


def poisson_photons(sinogram: np.ndarray) -> float:
    """Estimate I0 (photons per bin, unattenuated) of a post-log sinogram y = log(I0 / counts), whose variance is
    exp(y) / I0: in air (y ~ 0) the noise std is 1 / sqrt(I0); without air bins, the MAD of the differences
    scaled by exp(-y / 2) at each stencil's centre (the signal's fine structure then biases it at high doses)."""
    air = air_noise_std(sinogram)
    if air is None:
        y = np.asarray(sinogram, dtype=np.float64)
        n = y.shape[-1] - DIFFERENCE_ORDER
        centre = sum(y[..., j:j + n] for j in range(DIFFERENCE_ORDER + 1)) / (DIFFERENCE_ORDER + 1)
        air = mad_std(detector_differences(y) * np.exp(-centre / 2))
    if air == 0:
        raise UserError("the sinogram has no noise to estimate photons from", key="photons",
                        fix="give the photon count (attribute photons)")
    return 1.0 / air**2


def poisson_sq_norms(sinogram: np.ndarray, photons: float) -> np.ndarray:
    """Expected ||noise||^2 per slice of a post-log sinogram (S, n_views, n_det) at ``photons`` I0: sum exp(y) / I0."""
    variance = np.exp(np.asarray(sinogram, dtype=np.float64)) / photons
    return variance.reshape(variance.shape[0], -1).sum(axis=1)


def _hankel(block: np.ndarray, k: int) -> np.ndarray:
    """Calibration matrix of ``block`` (C, h, w): one row per k x k patch position, the C patches side by side."""
    from numpy.lib.stride_tricks import sliding_window_view

    patches = sliding_window_view(block, (k, k), axis=(1, 2))  # (C, h-k+1, w-k+1, k, k)
    return np.moveaxis(patches, 0, 2).reshape(-1, block.shape[0] * k * k)


def _low_eigenvalues(matrix: np.ndarray) -> float:
    """Mean of the lowest LOW_EIGENVALUES fraction of the eigenvalues of matrix^H matrix."""
    values = np.sort(np.linalg.svd(matrix, compute_uv=False) ** 2)
    return float(values[: max(1, int(LOW_EIGENVALUES * values.size))].mean())


def calibration_kernel(coils: int, blocks: list[tuple[int, int]]) -> int | None:
    """The patch side of the calibration matrix for calibration blocks of shapes ``blocks`` (hy, hx), one per slice:
    the largest from CALIBRATION_KERNEL down to MIN_CALIBRATION_KERNEL whose matrix has at least twice as many
    patch positions (rows) as columns (coils k^2) in every block; None when even the smallest has not."""
    for k in range(CALIBRATION_KERNEL, MIN_CALIBRATION_KERNEL - 1, -1):
        if all((hy - k + 1) * (hx - k + 1) >= 2 * coils * k * k for hy, hx in blocks):
            return k
    return None


def calibration_noise_std(kspace: np.ndarray, sampled: np.ndarray) -> float | None:
    """Complex noise std from the null space of the calibration matrix of k-space (S, C, ny, nx) whose fully
    sampled centre (``sampled`` (S, ny, nx) bool) is found per slice; None with one coil or a calibration block too
    small for any kernel (:func:`calibration_kernel`). Pure-noise reference: the same matrix of unit complex white
    noise (a fixed seed)."""
    from recon.physics.coil_maps import calibration_size, centre_slice

    n_slices, coils, ny, nx = kspace.shape
    if coils < 2:
        return None
    blocks = [calibration_size(sampled[s]) for s in range(n_slices)]
    k = calibration_kernel(coils, blocks)
    if k is None:
        return None
    rng = np.random.default_rng(0)
    data, reference = 0.0, 0.0
    for s, (hy, hx) in enumerate(blocks):
        block = kspace[s][:, centre_slice(ny, hy), centre_slice(nx, hx)].astype(np.complex128)
        noise = (rng.standard_normal(block.shape) + 1j * rng.standard_normal(block.shape)) / math.sqrt(2)
        data += _low_eigenvalues(_hankel(block, k))
        reference += _low_eigenvalues(_hankel(noise, k))
    return math.sqrt(data / reference)


def outer_kspace_noise_std(values: np.ndarray, sampled: np.ndarray) -> float | None:
    """Complex noise std from the sampled values (S, ny, nx) in the corners of k-space (see OUTER_KSPACE), by MAD
    of their real and imaginary parts; None when fewer than 20 are sampled there."""
    ny, nx = values.shape[-2:]
    fy = np.abs(np.arange(ny) - ny // 2) / (ny / 2)
    fx = np.abs(np.arange(nx) - nx // 2) / (nx / 2)
    corners = np.minimum(fy[:, None], fx[None, :]) >= OUTER_KSPACE
    chosen = values[sampled & corners]
    if chosen.size < 20:
        return None
    return math.sqrt(2) * mad_std(np.concatenate([chosen.real, chosen.imag]))


def kspace_noise_std(kspace: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """Per-coil complex noise std (C,) of multi-coil k-space (S, C, ny, nx) with ``mask`` (ny, nx) or (S, ny, nx):
    the smaller of the calibration and outer-k-space bounds (see the module), and how it was found."""
    n_slices, coils, ny, nx = kspace.shape
    sampled = np.broadcast_to(np.asarray(mask) > 0, (n_slices, ny, nx))
    per_coil, how = np.full(coils, np.inf), set()
    for c in range(coils):
        outer = outer_kspace_noise_std(kspace[:, c], sampled)
        if outer is not None:
            per_coil[c] = outer
    calibration = calibration_noise_std(kspace, sampled)  # one value for all coils: their null space is shared
    if calibration is not None:
        per_coil = np.minimum(per_coil, calibration)
        how.add("calibration-matrix null space")
    if np.isinf(per_coil).any():
        raise UserError("k-space has neither a fully sampled calibration block (with 2+ coils) nor sampled corners",
                        key="kspace", fix="give the noise level (attribute noise_std)")
    if calibration is None or (per_coil < calibration).any():
        how.add("outer k-space MAD")
    return per_coil, " and ".join(sorted(how))


def relative_noise(measurements_norm: float, noise_norm: float) -> float:
    """The ``--noise-std`` of ``recon simulate`` a noise level corresponds to: ||noise|| / ||noiseless measurements||
    (= std / RMS), the latter taken as sqrt(||y||^2 - ||noise||^2). (ct-dynamic's ``--noise-std`` is relative to
    the largest value instead: std / max |y|.)"""
    return noise_norm / math.sqrt(max(measurements_norm**2 - noise_norm**2, 1e-300))


def _from_file(std: float, counts: np.ndarray) -> NoiseEstimate:
    return NoiseEstimate(float(std), float(std) ** 2 * counts.astype(np.float64), "file", "the file's noise_std")


def _no_estimator(spec: str) -> UserError:
    return UserError(f"no noise estimator for {spec} files", key="noise_std", fix="give the noise level")


def estimate_noise(measurement, slices: slice | None = None) -> NoiseEstimate:
    """The noise level of an open, validated :class:`~recon.io.measurement.MeasurementFile` (its ``slices``, where its
    spec estimates slices apart), in the file's unit: the file's ``noise_std`` or photon count when it states them,
    else estimated (see the module). Its spec's kind says how (:attr:`~recon.specs.SpecKind.file_noise`)."""
    kind = get_kind(measurement.spec.id)
    if kind.file_noise is None:
        raise _no_estimator(kind.id)
    return load_reference(kind.file_noise)(measurement, slices)


def problem_noise(problem, attrs: dict) -> NoiseEstimate:
    """The noise level of a built :class:`~recon.problem.Problem` in its own unit (that of ``problem.y``, which the
    methods' residuals are measured in), ``attrs`` its file's attributes: its spec's kind says how
    (:attr:`~recon.specs.SpecKind.noise`); UserError for a spec without an estimator."""
    hook = get_kind(problem.spec).noise
    if hook is None:
        raise _no_estimator(problem.spec)
    return load_reference(hook)(problem, attrs)


def per_slice(estimates: list[NoiseEstimate]) -> NoiseEstimate:
    """One estimate of slices estimated apart: their sq_norms side by side, the RMS of their std."""
    if len(estimates) == 1:
        return estimates[0]
    std = float(np.sqrt(np.mean([e.std**2 for e in estimates])))
    first = estimates[0]
    method = first.method if first.source == "file" else f"{first.method}, per slice"
    return NoiseEstimate(std, np.concatenate([e.sq_norms for e in estimates]), first.source, method)


def sinogram_noise(attrs: dict, sinogram: np.ndarray, scale: float = 1.0) -> NoiseEstimate:
    """The noise level of post-log sinograms (..., n_views, n_det), estimated jointly, whose file has ``attrs``: its
    Poisson model (``noise_model``, ``photons``), else its ``noise_std``, else the MAD over air bins (see the
    module). ``scale``: the divisor the sinogram was read with (its stated ``noise_std`` is divided by it, and the
    Poisson variance of the file's values by its square)."""
    sinogram = sinogram.reshape(-1, *sinogram.shape[-2:])
    counts = np.full(sinogram.shape[0], sinogram[0].size)
    if attrs.get("noise_model") == "poisson":
        photons, source = attrs.get("photons"), "file"
        if photons is None:
            photons, source = poisson_photons(sinogram * scale), "estimated"
        sq_norms = poisson_sq_norms(sinogram * scale, photons) / scale**2
        std = math.sqrt(sq_norms.sum() / counts.sum())
        return NoiseEstimate(std, sq_norms, source, f"Poisson, {photons:.4g} photons ({source}): sum exp(y)/I0")
    if attrs.get("noise_std") is not None:
        return _from_file(attrs["noise_std"] / scale, counts)
    std, how = sinogram_noise_std(sinogram)
    return NoiseEstimate(std, std**2 * counts.astype(np.float64), "estimated", how)


def kspace_noise(attrs: dict, kspace: np.ndarray, mask: np.ndarray) -> NoiseEstimate:
    """The noise level of complex multi-coil k-space (S, C, ny, nx) sampled where ``mask`` (ny, nx) or (S, ny, nx)
    is nonzero, estimated jointly, whose file has ``attrs``: its ``noise_std``, else :func:`kspace_noise_std`
    (with the per-coil std)."""
    sampled = np.broadcast_to(mask > 0, (kspace.shape[0], *kspace.shape[-2:]))
    counts = sampled.reshape(kspace.shape[0], -1).sum(axis=1) * kspace.shape[1]
    if attrs.get("noise_std") is not None:
        return _from_file(attrs["noise_std"], counts)
    per_coil, how = kspace_noise_std(kspace, mask)
    sq_norms = sampled.reshape(kspace.shape[0], -1).sum(axis=1) * float((per_coil**2).sum())
    return NoiseEstimate(float(math.sqrt(np.mean(per_coil**2))), sq_norms, "estimated", how, per_coil)


def radar_noise(attrs: dict, measurements: np.ndarray) -> NoiseEstimate:
    """The noise level the file with ``attrs`` states (``noise_std``) for its ``measurements`` (any shape, one
    slice); UserError without it. Radar's: its noise is not estimated from the data (see the module)."""
    if attrs.get("noise_std") is None:
        raise UserError("the file has no noise_std attribute, and radar noise is not estimated from the data",
                        key="noise_std", fix="pass the measurements' SNR, e.g. --set snr_db=30")
    return _from_file(attrs["noise_std"], np.array([np.asarray(measurements).size]))
