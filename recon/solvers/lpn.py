"""Method ``lpn``: PnP-ADMM with the prox of a learned proximal network (Fang, Buchanan, Sulam, ICLR 2024).

The ADMM loop is :func:`recon.solvers.pnp.pnp_admm`, per slice in its normalised units:

    min_u  1/2 ||A' u - y'||^2 + rho R_tau(u),   A' = A / ||A||,  y' = y / (s ||A||)

(s: the slice's 0.99 quantile of |first estimate|), with z <- f_tau(x + u), f_tau(v) = (1 - tau) v + tau f(v)
and f the LPN: exactly the prox of a learned regulariser R_tau (R for tau = 1, about tau R below; see
:mod:`recon.models.lpn`), so ``tau`` tunes the prior's strength beside rho. Theorem 2 of the paper: the
iterates converge when rho > ||A'^T A'|| = 1, the Lipschitz constant of the data term's gradient in this unit;
every run records whether its rho meets this (attribute ``convergence``, starting with "warning" if not).

Since z = f_tau(v) with v = x + u the prox's input, v inverts f_tau at z, so
R_tau(z) = <v, z> - ||z||^2 / 2 - psi_tau(v) is exact and costs one pass of psi. History: ``prior`` R_tau(z_k)
(mean over slices), ``objective`` the data term plus rho times it, and the loop's ``residual``
||x - z|| / ||z|| and ``change`` ||z_k - z_{k-1}|| / ||z_k|| (the fixed-point residual). ``report_prior=true``
stores R_tau at the result per slice (``prior_value``) and its per-pixel terms (``prior_map``), in the
normalised unit.

Known limit of the shipped lpn-ct: its learned R is not bounded below, so on large flat piecewise-constant
images the iterates can drift after many iterations (Shepp-Logan, 45 views: the residual rises again after
iteration 42 at 64^2 and 118 at 128^2). On the real CT slices measured it falls monotonically (693_UNCR,
128^2: below 1e-3 from iteration 38; 256^2 over 200 iterations: 8.7e-3 to 1.4e-4).
"""

from __future__ import annotations

import torch

from recon.errors import UserError
from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.priors import get_prior
from recon.priors.lpn import LPNPrior, describe_shipped
from recon.problem import Problem
from recon.solvers.pnp import SPECS, pnp_admm

# Tuned by scripts/tune_pnp.py on three 256^2 training images (CT 30 and 60 views, 1% noise; see pnp.DEFAULTS):
# rho just above 1 (Theorem 2) and tau 0.05, 100 iterations: mean 34.55 dB, tv 33.41. Smaller tau needs more
# iterations and does not do better (tau 0.02: 32.8 dB at 100, 34.1 at 300); larger tau weighs R too heavily
# (tau 0.2: 32.2 dB; tau 1 diverges to a few dB). At 300 iterations tau 0.05 gives 34.1 dB: the early iterates
# are better than the limit.
DEFAULT_RHO = 1.05
DEFAULT_TAU = 0.05
DEFAULT_ITERATIONS = 100

PARAMS = (
    Param("rho", float, DEFAULT_RHO, "ADMM penalty = weight of the learned R relative to the data term, whose "
          "gradient is 1-Lipschitz; convergence is guaranteed for rho > 1", low=1e-8),
    Param("tau", float, DEFAULT_TAU, "strength of the LPN prox in (0, 1]: z = (1 - tau) v + tau f(v), the exact "
          "prox of a regulariser of about tau R", low=1e-6, high=1.0),
    Param("iterations", int, DEFAULT_ITERATIONS, "ADMM iterations", low=1, high=100000),
    Param("cg_iterations", int, 5, "CG steps per x-update (warm started; tuned and measured with 5)", low=1,
          high=1000),
    Param("weights", str, None, "W.safetensors from `recon train lpn`; default: the prior's shipped weights "
          f"({describe_shipped()})"),
    Param("report_prior", bool, False, "store R at the result per slice (prior_value) and per pixel (prior_map)"),
)


def lpn_prior(params: dict) -> LPNPrior:
    """The LPN prior named by ``params["prior"]`` (with ``weights`` when given); UserError for other priors."""
    prior = get_prior(params["prior"], "prox")
    if not isinstance(prior, LPNPrior):
        raise UserError(f"method lpn needs a learned proximal network, not the prior {params['prior']!r}",
                        key="--prior", fix="use --prior lpn, lpn-ct or lpn-mri, or pnp-admm for other priors")
    return type(prior)(params["weights"]) if params["weights"] else prior


def convergence_note(rho: float) -> str:
    """Whether Theorem 2's condition rho > ||A'^T A'|| = 1 holds."""
    if rho > 1.0:
        return f"rho {rho:g} > ||A^T A|| = 1 (normalised): the convergence guarantee (LPN paper, Theorem 2) applies"
    return (f"warning: rho {rho:g} <= ||A^T A|| = 1 (normalised): the convergence guarantee (LPN paper, Theorem 2) "
            "does not apply; use rho > 1")


@method("lpn", family="learned proximal networks", specs=SPECS, params=PARAMS, prior_capability="prox",
        default_prior="lpn", slice_separable=True)
def lpn(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """PnP-ADMM with a learned proximal network: an exact prox, convergent for rho > ||A^T A||."""
    prior, rho, tau = lpn_prior(params), params["rho"], params["tau"]
    last: dict[str, torch.Tensor] = {}
    values: list[float] = []

    def prox(v: torch.Tensor) -> torch.Tensor:
        z = prior.prox(v, tau)
        last.update(v=v, z=z)
        values.append(float(prior.value_map(z, preimage=v, tau=tau).flatten(1).sum(dim=1).mean()))
        return z

    result = pnp_admm(problem, prox, params, ctx, name="lpn")
    result.history["prior"] = values
    result.history["objective"] = [d + rho * r for d, r in zip(result.history["data"], values, strict=True)]
    result.extras["attrs"] = {"convergence": convergence_note(rho)}
    if params["report_prior"]:
        terms = prior.value_map(last["z"], preimage=last["v"], tau=tau)
        result.extras["datasets"] = {
            "prior_value": terms.flatten(1).sum(dim=1).cpu().numpy().astype("float32"),
            "prior_map": terms.reshape(problem.output_shape).cpu().numpy().astype("float32"),
        }
    return result
