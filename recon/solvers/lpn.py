"""Method ``lpn``: PnP-ADMM with the prox of a learned proximal network (Fang, Buchanan, Sulam, ICLR 2024).

The loop is :class:`recon.solvers.pnp.ADMM` on the normalised problem (A' = A / ||A||, y' = y / (s ||A||), s the
slice's 0.99 quantile of |first estimate|):

    min_u  1/2 ||A' u - y'||^2 + rho R_tau(u) + i_B(u),      z <- P_B(f_tau(x + u)),  f_tau(v) = (1 - tau) v + tau f(v)

with f the LPN, exactly the prox of a learned regulariser R_tau (R for tau = 1, about tau R below; see
:mod:`recon.models.lpn`), so ``tau`` tunes the prior's strength beside rho. i_B is the indicator of the box B =
[``box_min``, ``box_max``] of images in the data's range, as the LPN paper constrains its CT reconstructions to
[0, 1] (complex images: magnitudes up to ``box_max``, the phase kept); P_B projects onto it (``box=false``: none).
Theorem 2 of the paper: the iterates converge when rho > ||A'^T A'|| = 1; every run records whether its rho meets
this (attribute ``convergence``, starting with "warning" if not).

The prox's output z' = f_tau(v) has v = x + u as its known preimage, so R_tau(z') = <v, z'> - ||z'||^2 / 2 -
psi_tau(v) is exact and costs one pass of psi (z' = z where the box is inactive). History: ``prior`` R_tau(z'_k)
(mean over slices), ``objective`` the data term plus rho times it, and the ADMM's ``residual``, ``change`` and
``data`` (watched by the divergence guard). ``report_prior=true`` stores R_tau at the last z' per slice
(``prior_value``) and its per-pixel terms (``prior_map``), in the normalised unit.

Known limit of the shipped lpn-ct: its learned R is not bounded below, so on large flat piecewise-constant
images the iterates can drift after many iterations (Shepp-Logan, 45 views: the residual rises again after
iteration 42 at 64^2 and 118 at 128^2; on real CT slices it falls monotonically: 693_UNCR, 128^2, below 1e-3 from
iteration 38); the box and the divergence guard bound what a run can return.
"""

from __future__ import annotations

import torch

from recon.errors import UserError
from recon.methods import Result, RunContext
from recon.priors import method_prior
from recon.priors.lpn import LPNPrior
from recon.problem import Problem
from recon.shrinkage import magnitude_prox
from recon.solvers.normalised import Normalised
from recon.solvers.pnp import ADMM, run_guarded


def lpn_prior(params: dict) -> LPNPrior:
    """The LPN prior named by ``params["prior"]`` (with ``weights`` when given); UserError for other priors."""
    prior = method_prior(params, "prox")
    if not isinstance(prior, LPNPrior):
        raise UserError(f"method lpn needs a learned proximal network, not the prior {params['prior']!r}",
                        key="--prior", fix="use --prior lpn, lpn-ct or lpn-mri, or pnp-admm for other priors")
    return prior


def convergence_note(rho: float) -> str:
    """Whether Theorem 2's condition rho > ||A'^T A'|| = 1 holds."""
    if rho > 1.0:
        return f"rho {rho:g} > ||A^T A|| = 1 (normalised): the convergence guarantee (LPN paper, Theorem 2) applies"
    return (f"warning: rho {rho:g} <= ||A^T A|| = 1 (normalised): the convergence guarantee (LPN paper, Theorem 2) "
            "does not apply; use rho > 1")


def project_box(z: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """z (S, C, ny, nx) onto the box: real images (C = 1) clamped to [low, high]; complex ones (C = 2) with their
    magnitude cut at ``high``, the phase kept."""
    return z.clamp(low, high) if z.shape[1] == 1 else magnitude_prox(z, lambda m, peak: m.clamp_max(high))


class LPNADMM(ADMM):
    """ADMM with z <- P_B(f_tau(x + u)); records the ADMM values plus ``prior`` and ``objective``."""

    def __init__(self, normalised: Normalised, prior: LPNPrior, params: dict):
        super().__init__(normalised, self.lpn_prox, params["rho"], params["cg_iterations"])
        self.prior, self.tau = prior, params["tau"]
        self.box = (params["box_min"], params["box_max"]) if params["box"] else None

    def lpn_prox(self, v: torch.Tensor) -> torch.Tensor:
        self.v = v
        self.z_prox = self.prior.prox(v, self.tau)
        return self.z_prox if self.box is None else project_box(self.z_prox, *self.box)

    def prior_terms(self) -> torch.Tensor:
        """The per-pixel terms of R_tau at the last prox output (S, 1, ny, nx)."""
        return self.prior.value_map(self.z_prox, preimage=self.v, tau=self.tau)

    def record(self) -> dict[str, float]:
        values = super().record()
        prior = float(self.prior_terms().flatten(1).sum(dim=1).mean())
        return {**values, "prior": prior, "objective": values["data"] + self.rho * prior}


def lpn(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``lpn``: PnP-ADMM with a learned proximal network, an exact prox, convergent for rho > ||A^T A||."""
    normalised = Normalised.per_slice(problem)
    admm = LPNADMM(normalised, lpn_prior(params), params)
    with torch.no_grad():
        result = run_guarded(problem, normalised, admm, params["iterations"], ctx)
    result.extras.setdefault("attrs", {})["convergence"] = convergence_note(params["rho"])
    if params["report_prior"]:
        terms = admm.prior_terms()
        result.extras["datasets"] = {
            "prior_value": terms.flatten(1).sum(dim=1).cpu().numpy().astype("float32"),
            "prior_map": terms.reshape(problem.output_shape).cpu().numpy().astype("float32"),
        }
    return result
