"""Cartesian k-space sampling masks (ny, nx) with a fully sampled centre (ACS), in the centred-FFT layout.

The centre of k-space (DC) is at index (ny // 2, nx // 2). 1D masks follow fastMRI and deepinv: the
phase-encode direction is the last axis (columns, kx); a sampled column is sampled along all of ky (the
readout, fully sampled). 2D masks sample single points of the (ky, kx) plane, as for the two phase-encode
axes of a 3D acquisition.
"""

from __future__ import annotations

import math

import numpy as np

from recon.errors import UserError

MASK_KINDS = ("uniform1d", "gaussian1d", "poisson2d", "random2d")
_DEFAULT_ACS = 24
_ACCEL_TOL = 0.02  # poisson2d stops calibrating once within 2 % of the requested acceleration


def make_mask(kind: str, shape: tuple[int, int], acceleration: float, acs: int | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """A 0/1 float32 mask (ny, nx) sampling about ny * nx / ``acceleration`` points, ACS included.

    :param kind: ``uniform1d`` (equispaced columns), ``gaussian1d`` (random columns, Gaussian density),
        ``poisson2d`` (variable-density Poisson-disc points), ``random2d`` (variable-density random points).
    :param acceleration: ratio of all k-space points to sampled ones, >= 1.
    :param acs: width of the fully sampled centre: ``acs`` central columns (1D) or an ``acs`` x ``acs``
        central square (2D). Default 24, capped so that the ACS uses at most half of the samples.
    :param rng: numpy Generator; the same seed gives the same mask (default: seed 0).
    """
    if kind not in MASK_KINDS:
        raise UserError(f"unknown mask kind {kind!r}", key="mask", fix=f"use one of {', '.join(MASK_KINDS)}")
    ny, nx = shape
    if not (math.isfinite(acceleration) and acceleration >= 1):
        raise UserError(f"acceleration {acceleration} is impossible", key="acceleration",
                        fix="use a finite acceleration >= 1")
    one_d = kind.endswith("1d")
    budget = round((nx if one_d else ny * nx) / acceleration)  # columns (1D) or points (2D) to sample
    if acs is None:
        acs = min(_DEFAULT_ACS, budget // 2 if one_d else math.isqrt(budget // 2))
    acs_cost = acs if one_d else acs * acs
    if budget < 1 or acs < 0 or acs > min(nx if one_d else ny, nx) or acs_cost > budget:
        raise UserError(f"acceleration {acceleration} with an ACS of {acs} is impossible for shape {shape}: "
                        f"{budget} {'columns' if one_d else 'points'} to sample", key="acceleration",
                        fix="lower the acceleration or the ACS size")
    rng = np.random.default_rng(0) if rng is None else rng
    if one_d and budget == acs:
        columns = np.arange(nx)[centre_slice(nx, acs)]
    elif kind == "uniform1d":
        columns = _uniform_columns(nx, budget, acs, rng)
    elif kind == "gaussian1d":
        columns = _gaussian_columns(ny, nx, budget, acs, rng)
    else:
        sampler = _poisson_points if kind == "poisson2d" else _random_points
        return sampler((ny, nx), budget, acs, rng).astype(np.float32)
    mask = np.zeros((ny, nx), np.float32)
    mask[:, columns] = 1
    return mask


def centre_slice(n: int, width: int) -> slice:
    """The ``width`` central indices of an axis of length n, around DC at n // 2 (deepinv's convention)."""
    return slice(n // 2 - width // 2, n // 2 + (width + 1) // 2)


def _acs_block(shape: tuple[int, int], acs: int) -> np.ndarray:
    """Bool (ny, nx), True on the central ``acs`` x ``acs`` calibration square."""
    block = np.zeros(shape, bool)
    block[centre_slice(shape[0], acs), centre_slice(shape[1], acs)] = True
    return block


def _uniform_columns(nx: int, budget: int, acs: int, rng: np.random.Generator) -> np.ndarray:
    """Column indices: the ACS plus ``budget - acs`` columns equispaced over the others, random offset.

    Written here rather than with deepinv's EquispacedMaskGenerator, whose line count includes columns that
    fall in the ACS, so that narrow images miss the requested acceleration (32 columns at R=3 gives 3.56).
    """
    outer = np.setdiff1d(np.arange(nx), np.arange(nx)[centre_slice(nx, acs)])
    n_out = budget - acs
    step = len(outer) / n_out
    picks = np.floor(rng.uniform(0, step) + step * np.arange(n_out)).astype(int)
    picks = np.minimum(picks, len(outer) - 1)  # guards against float rounding at the last pick
    return np.concatenate([np.arange(nx)[centre_slice(nx, acs)], outer[picks]])


def _gaussian_columns(ny: int, nx: int, budget: int, acs: int, rng: np.random.Generator) -> np.ndarray:
    """Column indices from deepinv's GaussianMaskGenerator (Schlemper et al. 2017 density), seeded by ``rng``.

    deepinv samples floor(nx / R) columns and int(center_fraction * nx) ACS columns; the arguments below are
    chosen so that these come out as exactly ``budget`` and ``acs``.
    """
    import torch  # imported here: the mask's helpers (centre_slice) serve torch-free readers
    from deepinv.physics.generator import GaussianMaskGenerator

    seed = torch.Generator().manual_seed(int(rng.integers(2**62)))
    generator = GaussianMaskGenerator((ny, nx), acceleration=nx / (budget + 0.5),
                                      center_fraction=(acs + 0.5) / nx, rng=seed)
    mask = generator.step(batch_size=1)["mask"][0, 0, 0]
    return torch.nonzero(mask).flatten().numpy()


def _distance_outside_acs(shape: tuple[int, int], acs: int) -> np.ndarray:
    """Normalised k-space radius (ny, nx) in [0, 1]: 0 on the ACS square, 1 at the far corners."""
    axes = []
    for n in shape:
        d = np.maximum(np.abs(np.arange(n) - n // 2) - acs / 2, 0.0)
        axes.append(d / max(d.max(), 1.0))
    return np.hypot(axes[0][:, None], axes[1][None, :]) / math.sqrt(2)


def _random_points(shape: tuple[int, int], budget: int, acs: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``budget`` points (bool (ny, nx)): the ACS square plus points outside it drawn without replacement
    with weight (1 - r)^4 + 0.02 (r: ``_distance_outside_acs``), by Efraimidis-Spirakis keys log(u) / w."""
    weight = (1 - _distance_outside_acs(shape, acs)) ** 4 + 0.02
    acs_block = _acs_block(shape, acs)
    keys = np.where(acs_block, -np.inf, np.log(rng.random(shape)) / weight).ravel()
    n_out = budget - acs * acs
    mask = acs_block.ravel()
    if n_out > 0:
        mask[np.argpartition(keys, -n_out)[-n_out:]] = True
    return mask.reshape(shape)


def _poisson_points(shape: tuple[int, int], budget: int, acs: int, rng: np.random.Generator) -> np.ndarray:
    """Variable-density Poisson-disc points (bool (ny, nx)) about ``budget`` in number, ACS included.

    The exclusion radius is ``scale * (1 + 4 r)`` pixels (r: ``_distance_outside_acs``), so the density falls
    about 25-fold from the ACS edge to the corners and where the radius is below 1 pixel all points are taken.
    The scale is calibrated to the budget by a density model, count ~ sum min(1, kappa / radius^2), whose
    constant kappa (0.7 for random sequential packing) is corrected from each draw's count (a few draws with
    the same priorities).
    """
    profile = 1 + 4 * _distance_outside_acs(shape, acs)
    priority = rng.permutation(shape[0] * shape[1]).reshape(shape)
    in_acs = _acs_block(shape, acs)
    kappa, best = 0.7, None
    for _ in range(8):
        scale = _scale_for(profile, budget, kappa)
        mask = _poisson_disc(scale * profile, priority) | in_acs
        count = int(mask.sum())
        if best is None or abs(count - budget) < abs(int(best.sum()) - budget):
            best = mask
        if abs(count - budget) <= _ACCEL_TOL * budget:
            break
        kappa *= count / budget
    return best


def _scale_for(profile: np.ndarray, budget: int, kappa: float) -> float:
    """Scale s with sum min(1, kappa / (s profile)^2) = budget (bisection in log s)."""
    def count(s: float) -> float:
        return float(np.minimum(1.0, kappa / (s * profile) ** 2).sum())

    lo, hi = 1e-3, 1.0
    while count(hi) > budget:
        lo, hi = hi, 2 * hi
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if count(mid) > budget else (lo, mid)
    return math.sqrt(lo * hi)


def _poisson_disc(radius: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Greedy Poisson-disc set on the pixel grid, bool (ny, nx).

    Pixels p, q conflict when |p - q| < (radius_p + radius_q) / 2 (pixels). The result is the set that
    accepting pixels one by one in decreasing ``priority`` (a permutation) would give, computed in parallel
    rounds (Luby's maximal independent set): every undecided pixel that outranks all its undecided
    conflicting neighbours is accepted, then their neighbours are rejected. Each round is vectorised over
    pixels, looping only over the neighbour offsets; O(log n) rounds in expectation.
    """
    ny, nx = radius.shape
    pad = max(1, math.ceil(radius.max()))
    width = nx + 2 * pad
    rad, prio, undecided = (np.pad(a, pad).ravel() for a in (radius, priority, np.ones(radius.shape, bool)))
    accepted = np.zeros(rad.shape, bool)

    dy, dx = np.mgrid[-pad:pad + 1, -pad:pad + 1]
    dist = np.hypot(dy, dx).ravel()
    keep = (dist > 0) & (dist < radius.max())
    offsets, dist = (dy * width + dx).ravel()[keep], dist[keep]

    idx = np.flatnonzero(undecided)
    while idx.size:
        is_max = np.ones(idx.size, bool)
        for off, d in zip(offsets, dist, strict=True):
            nb = idx + off
            is_max &= ~(undecided[nb] & (prio[nb] > prio[idx]) & (2 * d < rad[idx] + rad[nb]))
        new = idx[is_max]
        accepted[new] = True
        undecided[new] = False
        for off, d in zip(offsets, dist, strict=True):
            nb = new + off
            undecided[nb[2 * d < rad[new] + rad[nb]]] = False
        idx = idx[undecided[idx]]
    return accepted.reshape(ny + 2 * pad, width)[pad:-pad, pad:-pad]
