"""Dynamic phantoms: image sequences (P, n, n) float32 in [0, 1] of objects that move and deform in time.

Coordinates follow :mod:`recon.phantoms`: x to the right and y up in [-1, 1] (the pixel width is 2 / n),
row 0 at the top. Each frame is evaluated analytically at 2 x 2 points per pixel and averaged (anti-aliased
edges), ``_CHUNK`` samples at a time, so memory stays at a few tens of MB whatever P. Time is normalised,
``tau = t / (P - 1)`` in [0, 1], so a phantom with more frames samples the same motion more finely.

- :func:`walnut`: a walnut-like cross-section (bumpy shell of irregular thickness, air gaps, a septum and a
  folded, textured kernel) under piecewise-affine motion, as the paper's dynamic walnut (RED-PSM).
- :func:`ellipses`: overlapping ellipses whose axes, centres and orientations vary smoothly.
- :func:`cardiac`: a short-axis cardiac slice for dynamic MRI: a beating left ventricle, right ventricle,
  lungs and static body, with a slow respiratory drift of the heart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recon.errors import UserError

DYNAMIC_PHANTOMS = ("walnut", "ellipses", "cardiac")
_SUPERSAMPLE = 2
_CHUNK = 2**21  # samples evaluated at once

Scene = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(tau (c, 1, 1), x (1, H, W), y (1, H, W)) -> values (c, H, W) for c frames at the sample points."""


def make_dynamic_phantom(name: str, n_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """The dynamic phantom ``name`` (one of ``DYNAMIC_PHANTOMS``), (n_frames, size, size) float32 in [0, 1]."""
    if name not in DYNAMIC_PHANTOMS:
        raise UserError(f"unknown dynamic phantom {name!r}", key="--phantom",
                        fix=f"choose {', '.join(DYNAMIC_PHANTOMS)}")
    return {"walnut": walnut, "ellipses": ellipses, "cardiac": cardiac}[name](n_frames, size, seed)


def _render(n_frames: int, size: int, scene: Scene) -> np.ndarray:
    """Frames (n_frames, size, size) float32 of ``scene``, each pixel the mean of its 2 x 2 sub-samples."""
    if n_frames < 1 or size < 2:
        raise UserError(f"need >= 1 frame and a size >= 2 (got {n_frames} frames of {size}^2)", key="--frames",
                        fix="e.g. --frames 64 --size 128")
    s = _SUPERSAMPLE
    offsets = ((np.arange(s) + 0.5) / s - 0.5)
    axis = ((np.arange(size)[:, None] - (size - 1) / 2 + offsets[None, :]) / (size / 2)).ravel()
    x, y = axis[None, None, :].astype(np.float32), -axis[None, :, None].astype(np.float32)  # float32: 3x faster trig
    tau = (np.arange(n_frames) / max(n_frames - 1, 1)).reshape(-1, 1, 1)
    frames = np.empty((n_frames, size, size), np.float32)
    chunk = max(1, _CHUNK // (s * size) ** 2)
    for start in range(0, n_frames, chunk):
        values = scene(tau[start:start + chunk], x, y).astype(np.float32, copy=False)
        frames[start:start + chunk] = values.reshape(-1, size, s, size, s).mean(axis=(2, 4))
    return np.clip(frames, 0, 1)


def _inside_ellipse(x: np.ndarray, y: np.ndarray, cx, cy, a, b, angle=0.0) -> np.ndarray:
    """Bool mask of the ellipse centred at (cx, cy) with semi-axes (a, b), a rotated by ``angle`` from x.

    Parameters are scalars or arrays broadcasting against the float32 grids; computed in float32.
    """
    cx, cy, a, b, angle = (np.asarray(value, np.float32) for value in (cx, cy, a, b, angle))
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return ((dx * cos + dy * sin) / a) ** 2 + ((dy * cos - dx * sin) / b) ** 2 <= 1


def _piecewise_linear(tau: np.ndarray, knots: np.ndarray, increments: np.ndarray) -> np.ndarray:
    """Sum_k increments[k] * (fraction of segment k elapsed at tau): continuous, linear within each segment.

    ``knots`` (K + 1,) from 0 to 1; ``increments`` (K, ...) the change over each segment; returns (T, ...).
    """
    elapsed = np.clip((tau[:, None] - knots[None, :-1]) / np.diff(knots)[None, :], 0, 1)  # (T, K)
    return np.tensordot(elapsed, increments, axes=1)


def walnut(n_frames: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """A walnut-like cross-section under piecewise-affine motion, (n_frames, size, size) float32 in [0, 1].

    The object: a dense shell (about 1.0) with a ridged outer surface and a thickness varying 2-6 % of the
    field, an air gap, a septum (0.8) splitting the kernel into two halves, and a kernel (about 0.55, with a
    fine texture) whose lobes are cut by winding air folds. The motion: three time segments with random
    lengths, each adding its own affine change (expansion, anisotropic stretch, shear, rotation) and
    translation at a constant rate, so the deformation is continuous and piecewise linear in time. The rim
    moves by up to 5-6 pixels at 128^2 (seeds 0-3), so the mean image (a static reconstruction at best)
    scores about 18 dB PSNR, while the best rank-11 approximation of the (P, pixels) matrix (a PSM with K =
    10) scores about 34 dB at P = 256.
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 2 * np.pi, 12).astype(np.float32)  # phases of the shape's harmonics
    axis = np.float32(rng.uniform(0, np.pi))  # direction of the long axis and of the septum
    knots = np.concatenate([[0], np.sort(rng.uniform(0.25, 0.75, 2)), [1]])
    turn = rng.uniform(0, np.pi)
    stretch = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    eye, rot = np.eye(2), np.array([[0.0, -1.0], [1.0, 0.0]])
    jitter = rng.uniform(0.8, 1.2, 3)
    increments = np.stack([  # change of the 2x2 map over each segment
        jitter[0] * (0.05 * eye + 0.03 * rot),  # expand and turn
        jitter[1] * stretch @ np.diag([0.045, -0.02]) @ stretch.T,  # stretch along one direction
        jitter[2] * (np.array([[0.0, 0.035], [0.0, 0.0]]) - 0.012 * eye - 0.025 * rot),  # shear, shrink, turn back
    ])
    shifts = rng.uniform(-0.012, 0.012, (3, 2))
    waves = rng.normal(0, 28, (4, 2)).astype(np.float32)  # texture: plane waves of 3-6 pixels at 128^2
    wave_phases = rng.uniform(0, 2 * np.pi, 4).astype(np.float32)

    def scene(tau, x, y):
        t = tau[:, 0, 0]
        maps = eye + _piecewise_linear(t, knots, increments)  # (c, 2, 2): reference -> world
        inverse = np.linalg.inv(maps).astype(np.float32)
        shift = _piecewise_linear(t, knots, shifts).astype(np.float32)
        dx, dy = x - shift[:, 0, None, None], y - shift[:, 1, None, None]
        u = inverse[:, 0, 0, None, None] * dx + inverse[:, 0, 1, None, None] * dy
        v = inverse[:, 1, 0, None, None] * dx + inverse[:, 1, 1, None, None] * dy
        return _walnut_density(u, v, p, axis, waves, wave_phases)

    return _render(n_frames, size, scene)


def _walnut_density(u, v, p, axis, waves, wave_phases):
    """The reference walnut at points (u, v) (any shape), float32."""
    r = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    along = phi - axis
    outer = 0.70 * (1 + 0.07 * np.cos(2 * along) + 0.025 * np.cos(3 * phi + p[0]) + 0.015 * np.cos(5 * phi + p[1]))
    outer += 0.008 * np.cos(29 * phi + p[2])  # ridges of the shell surface
    thickness = 0.035 + 0.03 * np.cos(1.5 * phi + p[3]) ** 2 + 0.012 * np.cos(7 * phi + p[4])
    inner = outer - thickness
    kernel_edge = inner - (0.018 + 0.02 * np.clip(np.cos(2 * phi + p[5]), 0, None))  # air gap
    # septum across the kernel along ``axis``; b is the distance from it
    b = v * np.cos(axis) - u * np.sin(axis)
    a = u * np.cos(axis) + v * np.sin(axis)
    texture = 1 + 0.05 * sum(np.sin(w[0] * u + w[1] * v + q) for w, q in zip(waves, wave_phases, strict=True))
    # each half's folds: rings around the half's centre, wound by an angular wave
    side = np.sign(b)
    hr = np.sqrt(a * a + (b - side * 0.3) ** 2)
    hphi = np.arctan2(b - side * 0.3, a)
    folds = np.sin(26 * hr + 2.2 * np.sin(3 * hphi + p[6] + side * p[7]) + p[8])
    lobes = 1 - 0.14 * np.clip(np.cos(4 * hphi + p[9]), 0, None) ** 3  # indentations of the kernel outline
    kernel = (r < kernel_edge * lobes) & (np.abs(b) > 0.045) & ~((folds > 0.72) & (hr > 0.08))
    density = np.where((r < outer) & (r >= inner), 1.0 * texture, 0.0)
    density = np.where((np.abs(b) < 0.022) & (r < inner), 0.8, density)
    density = np.where(kernel, 0.55 * texture, density)
    return density


def ellipses(n_frames: int, size: int = 128, seed: int = 0, count: int = 7) -> np.ndarray:
    """Deforming ellipses, (n_frames, size, size) float32 in [0, 1]: a body ellipse (0.5) holding ``count``
    smaller ones (0.1 to 1, drawn over each other) whose semi-axes, centres and orientations vary as
    sinusoids of 0.5 to 1.5 periods over the sequence (axes by up to 25 %, centres by up to 0.06)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.4, 0.4, (count, 2))
    semi_axes = rng.uniform(0.06, 0.25, (count, 2))
    angles = rng.uniform(0, np.pi, count)
    values = rng.uniform(0.1, 1.0, count).astype(np.float32)
    periods = rng.uniform(0.5, 1.5, (count, 4))
    phases = rng.uniform(0, 2 * np.pi, (count, 4))
    swing = rng.uniform(0.3, 1.0, (count, 4)) * np.array([0.25, 0.25, 0.06, 0.06])
    spin = rng.uniform(-0.5, 0.5, count)

    def scene(tau, x, y):
        body = _inside_ellipse(x, y, 0, 0, 0.85 + 0.03 * np.sin(2 * np.pi * tau), 0.7, 0.0)
        image = np.where(body, np.float32(0.5), np.float32(0))
        for k in range(count):
            wave = swing[k] * np.sin(2 * np.pi * periods[k] * tau[..., None] + phases[k])  # (c, 1, 1, 4)
            a, b = semi_axes[k, 0] * (1 + wave[..., 0]), semi_axes[k, 1] * (1 + wave[..., 1])
            inside = _inside_ellipse(x, y, centres[k, 0] + wave[..., 2], centres[k, 1] + wave[..., 3], a, b,
                                     angles[k] + spin[k] * tau)
            image = np.where(inside & body, values[k], image)
        return image

    return _render(n_frames, size, scene)


def cardiac(n_frames: int, size: int = 128, seed: int = 0, beats: float = 2.0) -> np.ndarray:
    """A short-axis cardiac MR slice over ``beats`` heartbeats, (n_frames, size, size) float32 in [0, 1].

    Static: the body (tissue 0.3 inside a fat layer 0.6), two lungs (0.05), the spine (0.45, canal 0.8) and
    the descending aorta (0.85). Beating: the left-ventricle blood pool (0.9) shrinks to 65 % of its radius at
    end-systole while the myocardium ring (0.25) around it keeps its area (so it thickens), and the
    right-ventricle blood pool (0.8) contracts with it; the whole heart drifts about 1.5 % of the field
    with one slow respiratory cycle. Positions and sizes are jittered by ``seed``.
    """
    rng = np.random.default_rng(seed)
    heart = np.array([0.08, -0.02]) + rng.uniform(-0.03, 0.03, 2)
    lv_radius = 0.14 * rng.uniform(0.9, 1.1)
    wall = 0.07 * rng.uniform(0.9, 1.1)
    breath_phase = rng.uniform(0, 2 * np.pi)
    myocardium_area = (lv_radius + wall) ** 2 - lv_radius**2

    def scene(tau, x, y):
        contraction = 0.5 - 0.5 * np.cos(2 * np.pi * beats * tau)  # 0 at end-diastole, 1 at end-systole
        drift = 0.015 * np.sin(2 * np.pi * tau + breath_phase)
        cx, cy = heart[0], heart[1] + drift
        lv = lv_radius * (1 - 0.35 * contraction)
        epicardium = np.sqrt(lv**2 + myocardium_area)
        body = _inside_ellipse(x, y, 0, 0, 0.86, 0.64)
        image = np.where(body, np.float32(0.6), np.float32(0))
        image = np.where(_inside_ellipse(x, y, 0, 0, 0.80, 0.58), 0.3, image)
        for side in (-1, 1):
            image = np.where(_inside_ellipse(x, y, side * 0.4, 0.05, 0.24, 0.36, side * 0.15), 0.05, image)
        image = np.where(_inside_ellipse(x, y, 0, -0.42, 0.11, 0.1), 0.45, image)
        image = np.where(_inside_ellipse(x, y, 0, -0.42, 0.035, 0.035), 0.8, image)
        image = np.where(_inside_ellipse(x, y, 0.1, -0.25, 0.055, 0.055), 0.85, image)
        rv_size = 1 - 0.25 * contraction
        rv = _inside_ellipse(x, y, cx - 0.16, cy + 0.05, 0.17 * rv_size, 0.12 * rv_size, -0.5)
        image = np.where(_inside_ellipse(x, y, cx - 0.05, cy + 0.01, 0.3, 0.26, -0.4), 0.3, image)  # pericardium
        image = np.where(rv, 0.8, image)
        image = np.where(_inside_ellipse(x, y, cx, cy, epicardium, epicardium), 0.25, image)
        return np.where(_inside_ellipse(x, y, cx, cy, lv, lv), 0.9, image)

    return _render(n_frames, size, scene)
