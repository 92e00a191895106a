"""The starting point of ``psm`` and ``red-psm``: a temporal basis estimated from the measurements alone, then the
spatial basis by least squares.

- Dynamic CT, ProSep (Iskender, Bresler, Klasky 2022): since projection is linear, the sinogram inherits the
  separable model, g(s, theta_t, t) = sum_k psi_k(t) (R Lambda_k)(s, theta_t). Each (R Lambda_k)(s, .) is
  expanded in angular harmonics cos(n theta), sin(n theta), n <= N, and each view also counts as the mirrored
  view at theta + pi (g(s, theta) = g(-s, theta + pi)). For a given Psi the harmonic coefficients of every
  detector bin follow by least squares, so Psi (through its spline latent Z) is fitted by maximising the part of
  the sinogram that the column space of L(Psi) = [harmonics x Psi] explains (variable projection, L-BFGS on
  Z, a QR inside). N is the largest that keeps L at most half as wide as it is tall.
- Dynamic MRI: the k-space samples measured in every frame (the calibration region) form a (P, samples)
  Casorati matrix whose leading K+1 left singular vectors are the temporal basis (Liang's PS model navigator).
  Without such samples the cosine basis below is used.

Then Lambda minimises w/2 sum_t ||A_t (Lambda Psi)_t - y_t||^2 + chi ||Lambda||^2 (the methods' penalty) by
conjugate gradients.
Psi is orthogonalised with rows of RMS 1 so that Lambda carries the image's scale. Memory: the sinogram twice
(mirrored), L (2 P V, (2N+1)(K+1)) in float64 (P=256, K=6: 3.7 MB), and the CG's few copies of Lambda and of
the sequence.
"""

from __future__ import annotations

import math

import torch

from recon.errors import UserError
from recon.models.separable import SeparableModel, combine, combine_adjoint, spline_matrix
from recon.problem import Problem
from recon.solvers.linalg import cg_coupled

PROSEP_ITERATIONS = 200
"""L-BFGS iterations of the variable-projection fit of Z (ProSep)."""


def cosine_latent(order: int, knots: int) -> torch.Tensor:
    """Z (K+1, d) whose spline is close to cos(pi k t), k = 0..K, t in [0, 1]: a smooth, deterministic start."""
    times = torch.linspace(0, 1, knots, dtype=torch.float64)
    return torch.cos(math.pi * torch.arange(order + 1, dtype=torch.float64)[:, None] * times[None])


def orthonormal_latent(latent: torch.Tensor, spline: torch.Tensor) -> torch.Tensor:
    """Z' spanning the same temporal subspace with Psi' = Z' B having orthogonal rows of RMS 1."""
    psi = latent @ spline
    _, r = torch.linalg.qr(psi.T)
    return torch.linalg.solve_triangular(r.T, latent, upper=False) * math.sqrt(psi.shape[1])


def prosep_latent(sinogram: torch.Tensor, angles: torch.Tensor, spline: torch.Tensor, order: int) -> torch.Tensor:
    """Z (K+1, d) from the dynamic sinogram (P, V, n_det) and its angles (P, V) in radians (see the module)."""
    frames, views, n_det = sinogram.shape
    g = sinogram.to(torch.float64).reshape(frames * views, n_det)
    g = torch.cat([g, g.flip(-1)])  # each view also as the mirrored one at theta + pi
    theta = angles.to(torch.float64).reshape(-1)
    theta = torch.cat([theta, theta + math.pi])
    frame = torch.arange(frames).repeat_interleave(views).repeat(2)
    rows = g.shape[0]
    n_max = max(0, (rows // (2 * (order + 1)) - 1) // 2)
    n = torch.arange(1, n_max + 1, dtype=torch.float64)
    harmonics = torch.cat([torch.ones(rows, 1, dtype=torch.float64), torch.cos(theta[:, None] * n),
                           torch.sin(theta[:, None] * n)], dim=1)  # (rows, 2N+1)
    latent = cosine_latent(order, spline.shape[0]).requires_grad_(True)
    optimizer = torch.optim.LBFGS([latent], max_iter=PROSEP_ITERATIONS, tolerance_change=1e-12,
                                  line_search_fn="strong_wolfe")

    def unexplained() -> torch.Tensor:  # the fraction of the sinogram outside the column space of L(Psi)
        optimizer.zero_grad(set_to_none=True)
        design = (harmonics[:, :, None] * (latent @ spline).T[frame][:, None, :]).reshape(rows, -1)
        q, _ = torch.linalg.qr(design)
        loss = 1 - (q.T @ g).square().sum() / g.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():  # the pipeline runs methods under no_grad
        optimizer.step(unexplained)
    return latent.detach()


def navigator_latent(problem: Problem, spline: torch.Tensor, order: int) -> torch.Tensor:
    """Z (K+1, d) from the k-space samples every frame measured (see the module); cosines when there are none."""
    mask = problem.physics.mask[:, 0] > 0  # (P, ny, nx)
    common = mask.all(dim=0)
    if int(common.sum()) <= order:
        return cosine_latent(order, spline.shape[0])
    samples = problem.y[..., common].to(torch.float64).reshape(problem.y.shape[0], -1).cpu()  # (P, 2 C n)
    u, _, _ = torch.linalg.svd(samples, full_matrices=False)
    psi = u[:, : order + 1].T  # (K+1, P)
    return torch.linalg.lstsq(spline.T, psi.T).solution.T  # Z with Z B closest to psi


def initial_model(problem: Problem, order: int, knots: int, weight: float, chi: float,
                  cg_iterations: int) -> SeparableModel:
    """The starting (Lambda, Z) of both methods, in the problem's units (see the module)."""
    frames = problem.x_shape[0]
    if order + 1 > frames:
        raise UserError(f"order {order} needs at least {order + 1} frames, the file has {frames}", key="--set order",
                        fix=f"use order <= {frames - 1}")
    if knots < order + 1:
        raise UserError(f"{knots} knots cannot carry {order + 1} independent temporal functions", key="--set knots",
                        fix=f"use knots >= order + 1 = {order + 1}")
    spline = torch.as_tensor(spline_matrix(knots, frames), dtype=torch.float64)
    if problem.spec == "ct-dynamic/1":
        latent = prosep_latent(problem.y[:, 0].cpu(), problem.physics.angles.cpu(), spline, order)
    else:
        latent = navigator_latent(problem, spline, order)
    latent = orthonormal_latent(latent, spline)
    device, dtype = problem.device, problem.dtype
    model = SeparableModel(torch.zeros((order + 1, *problem.x_shape[1:]), device=device, dtype=dtype),
                           latent.to(device=device, dtype=dtype), spline.to(device=device, dtype=dtype))
    psi, physics = model.temporal(), problem.physics

    def normal(spatial: torch.Tensor) -> torch.Tensor:
        return weight * combine_adjoint(psi, physics.A_adjoint(physics.A(combine(psi, spatial)))) + 2 * chi * spatial

    with torch.no_grad():
        rhs = weight * combine_adjoint(psi, physics.A_adjoint(problem.y))
        model.spatial = cg_coupled(normal, rhs, cg_iterations)
    return model
