"""Diffusion-prior reconstruction of slices and volumes: ``dds`` and ``diffusion-mbir``.

Both sample from the posterior with a 2D slice diffusion model (:mod:`recon.priors.diffusion`, VP with T = 1000
steps) and tie the slices of a volume together by total variation along z alone, through one ADMM step per
diffusion step on the whole volume, its variables (v, u) carried from step to step (Chung et al. CVPR 2023):

    x <- CG[(w A^T A + rho Dz^T Dz + mu I) x = w A^T y + rho Dz^T (v - u) + mu x0]    M steps started at x0
    v <- soft(Dz x + u, lam / rho);   u <- u + Dz x - v

in the normalised unit (the problem divided by a robust scale of the first estimate, w = 1/||A||^2). mu = 0 is DDS's
noiseless form — M conjugate-gradient steps from x0 stay in the Krylov subspace around it — and mu = 1/gamma its
proximal form (I + gamma N) x = x0 + gamma b for noisy data, the default of both methods: with TV_z the noiseless form
diverged here (Colin27 at 8 views: 8.2 dB; 18.0 without TV_z, 18.75 in the proximal form with it). A single slice,
or lam = 0, leaves the CG step alone.

- ``dds`` (Chung, Lee, Ye, ICLR 2024): ``nfe`` DDIM steps t -> s from T-1 down to 0. Per step eps = eps_theta(x_t,
  t), Tweedie's x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), the data step above on x0, then
  x_s = sqrt(abar_s) x0' + sqrt(1 - abar_s) (eta n + sqrt(1 - eta^2) eps), n ~ N(0, I). No gradient through the
  network.
- ``diffusion-mbir``: ancestral (DDPM) predictor steps on ``nfe / 2`` time steps evenly spaced in 0..T-1, each
  followed by a Langevin corrector step (signal-to-noise ratio ``snr``), and after each of them the data step
  applied to the current iterate as an image, x_t / sqrt(abar_t): ``nfe`` network evaluations per slice
  (the paper: 2000 steps, 4000 evaluations).

Each draw runs on the iteration driver (:mod:`recon.solvers.driver`), one update per data step. dds's draws run under
the divergence guard: its data-consistent x0' estimates are images, so a draw whose data term keeps growing or whose
images leave the normalised range stops and falls back to its best estimate (or the first estimate), saying so.
diffusion-mbir's are not guarded: its data steps act on noisy images x_t / sqrt(abar_t), far outside that range until
the last steps (85% of the values of its first ones).

Slices go through the network ``slice_batch`` at a time, so memory is the network's activations for that many
slices plus a few copies of the volume and its measurements. ``samples`` = K > 1 draws K posterior samples and
returns their mean, with the per-voxel standard deviation as the output dataset ``uncertainty``. History per step:
``t`` (the time step), ``data`` (the data term of x0') and ``change`` (relative change of x0').
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from recon.methods import Result, RunContext, get_method, per_spec
from recon.models.diffusion import from_model, noised, to_model, tweedie
from recon.priors import method_prior
from recon.problem import Problem
from recon.solvers.driver import Algorithm, Driver, Guard, guarded_result
from recon.solvers.linalg import cg_coupled, operator_sqnorm, relative, solve_normal
from recon.solvers.normalised import Normalised, robust_scale

SCALE_TV_ITERATIONS = 100


def dz(x: torch.Tensor) -> torch.Tensor:
    """Differences along the slice (batch) axis: (S, ...) -> (S - 1, ...)."""
    return x[1:] - x[:-1]


def dz_adjoint(d: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`dz`: (S - 1, ...) -> (S, ...)."""
    zero = torch.zeros_like(d[:1])
    return torch.cat((zero, d)) - torch.cat((d, zero))


class DataStep:
    """The data-consistency step of the module docstring on the normalised volume, with the ADMM-TV_z state.
    Without TV_z (one slice, or lam = 0) the solve is the operator's regularised normal solve
    (:func:`recon.solvers.linalg.solve_normal`, per slice)."""

    def __init__(self, problem: Problem, y: torch.Tensor, lam: float, rho: float, mu: float, iterations: int):
        self.physics, self.y = problem.physics, y
        self.normalised = Normalised(problem, 1.0, y, operator_sqnorm(problem))
        self.weight = self.normalised.weight
        self.data_rhs = self.weight * self.physics.A_adjoint(y)
        self.tv = lam > 0 and y.shape[0] > 1
        self.lam, self.rho, self.mu, self.iterations = lam, (rho if self.tv else 0.0), mu, iterations
        self.v = self.u = None
        seen = self.physics.A_adjoint(self.physics.A(torch.ones_like(self.data_rhs)))
        seen = torch.linalg.vector_norm(seen, dim=1, keepdim=True)
        self.support = (seen > 1e-6 * seen.max()).to(seen.dtype)
        """Pixels the measurements see at all (MRI: inside the coil maps' support; CT: all). Outside, the data
        leave the image free and a diffusion model left alone there makes up bright backgrounds that feed back
        into its next steps; they are set to 0, as SENSE reconstructions do."""

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        out = self.weight * self.physics.A_adjoint(self.physics.A(x)) + self.mu * x
        return out + self.rho * dz_adjoint(dz(x)) if self.tv else out

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        x0 = x0 * self.support
        rhs = self.data_rhs + self.mu * x0
        if not self.tv:
            return solve_normal(self.physics, rhs, self.mu, x0, self.iterations, self.weight, tol=1e-7) * self.support
        if self.v is None:
            self.v, self.u = dz(x0), torch.zeros_like(dz(x0))
        rhs = rhs + self.rho * dz_adjoint(self.v - self.u)
        x = cg_coupled(self.normal, rhs, self.iterations, init=x0, tol=1e-7) * self.support
        d = dz(x) + self.u
        self.v = torch.nn.functional.softshrink(d, self.lam / self.rho)
        self.u = d - self.v
        return x

    def data_term(self, x: torch.Tensor) -> float:
        """w/2 ||A x - y||^2 per slice, mean over slices."""
        return self.normalised.data_term(x)


class Draw(Algorithm):
    """One posterior sample as driver iterations: each update advances ``steps`` (a generator of a sampler's data
    steps, yielding (t, data-consistent x)) by one. Records ``t``, ``data`` (the data term of x) and ``change``
    (relative change of x; 1 at the first step). Its start, for the guard's fallback, is the first estimate."""

    def __init__(self, steps: Iterator[tuple[float, torch.Tensor]], data: DataStep, start: torch.Tensor):
        self.steps, self.data, self.x, self.t, self.previous = steps, data, start, None, None

    def update(self) -> None:
        self.previous = None if self.t is None else self.x
        self.t, self.x = next(self.steps)

    def record(self) -> dict[str, float]:
        change = 1.0 if self.previous is None else relative(self.previous, self.x)
        return {"t": float(self.t), "data": self.data.data_term(self.x), "change": change}


class Sampler:
    """What both methods share: the prior in the problem's layout, the scale, the schedule and the draws."""

    def __init__(self, problem: Problem, params: dict, ctx: RunContext, init: str = "tv"):
        """``init``: the first estimate (:func:`first_estimate`); diffusion-mbir takes only its scale."""
        self.problem, self.ctx, self.params = problem, ctx, params
        self.prior = method_prior(params, "eps")
        self.net = self.prior.load(problem.complex_image, problem.x_shape[1], problem.device)
        estimate = first_estimate(problem, init, ctx)
        self.normalised = Normalised.by(problem, robust_scale(estimate), estimate)
        self.estimate, self.phase = self.prior.split(self.normalised.x0)
        """The first estimate in the normalised unit as the network models it (where ``start`` < 1 begins), and
        its phase when that is a magnitude (a 1-channel model on MRI; else None). The phase stays fixed: taking it
        from each step's data-consistent x instead let the phase of the unmeasured frequencies turn to noise, whose
        speckle the model then amplified (mri4x dds: 15.2 dB at 10 NFE; with the fixed phase 24.7)."""

    def data_step(self) -> DataStep:
        """The data step with the parameters' lam, rho, M and mu = 1/gamma (0: the noiseless form)."""
        p = self.params
        mu = 0.0 if p["gamma"] == 0 else 1.0 / p["gamma"]
        return DataStep(self.problem, self.normalised.y, p["lam"], p["rho"], mu, p["cg_iterations"])

    def eps(self, x_t: torch.Tensor, t: float) -> torch.Tensor:
        return self.prior.eps(x_t, t, slice_batch=self.params["slice_batch"])

    def network_image(self, x: torch.Tensor) -> torch.Tensor:
        """x in the problem layout -> the image the network models (the magnitude for a 1-channel model on MRI)."""
        return self.prior.split(x)[0]

    def with_phase(self, image: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`network_image`, with the fixed :attr:`phase`."""
        return self.prior.join(image, self.phase)

    def abar(self, t: float) -> float:
        return float(self.net.abar(t))

    @staticmethod
    def noise_like(image: torch.Tensor) -> torch.Tensor:
        """Standard normal noise drawn on the CPU (torch's global generator, seeded by the pipeline), so that a
        seed gives the same samples on any device."""
        return torch.randn(image.shape, dtype=image.dtype).to(image.device)

    def run(self, steps: int, draw: Callable[[DataStep], Iterator[tuple[float, torch.Tensor]]],
            guard: Guard | None) -> Result:
        """``samples`` draws of ``draw(data)`` (each yields ``steps`` data steps) under ``guard``, their mean and
        spread, scaled back."""
        count = self.params["samples"]
        draws, messages = [], []
        with Driver(self.ctx, self.ctx.method, steps * count, guard=guard) as driver:
            for _ in range(count):
                data = self.data_step()
                run = driver.run(Draw(draw(data), data, self.normalised.x0), steps)
                draws.append(self.normalised.units(run.estimate))
                if run.guard:
                    messages.append(run.guard)
        stack = torch.stack(draws)
        result = guarded_result(stack.mean(0), driver.history, messages, self.ctx)
        if count > 1:
            values = torch.linalg.vector_norm(stack, dim=2) if self.problem.complex_image else stack[:, :, 0]
            spread = values.std(0).reshape(self.problem.output_shape)
            result.extras["datasets"] = {"uncertainty": spread.cpu().numpy().astype(np.float32)}
        return result


def quick_tv(problem: Problem) -> torch.Tensor:
    """A quick 2D TV reconstruction (``SCALE_TV_ITERATIONS`` PDHG steps), problem layout. Its 0.99 quantile of |x|
    gives the image scale (the unit the diffusion models were trained in): the first estimate overstates it where
    measurements are few (FBP of Colin27 from 8 views: 1.58 times the truth's, from its streaks; this: 1.02).
    ``dds`` with ``start`` < 1 also starts from it."""
    from recon.methods.classical import TV_LAM

    method = get_method("tv")  # the fixed lam: an auto search would cost solves and see unconverged residuals
    params = {"dims": 2, "iterations": SCALE_TV_ITERATIONS, "lam": per_spec(TV_LAM, problem.spec)}
    return method.solve(problem, method.parse_params(params), RunContext(device=problem.device)).x


def first_estimate(problem: Problem, init: str, ctx: RunContext | None = None) -> torch.Tensor:
    """The first estimate (problem layout) whose 0.99 quantile gives the image scale and where ``start`` < 1 begins:
    ``tv`` the quick TV of :func:`quick_tv`; another method's name, that method at its defaults (reporting its
    progress and warnings through ``ctx``)."""
    if init == "tv":
        return quick_tv(problem)
    method = get_method(init)
    return method.solve(problem, method.parse_params({}), ctx or RunContext(device=problem.device)).x


def time_steps(count: int, timesteps: int, start: float = 1.0) -> list[float]:
    """``count`` time steps evenly spaced from start (T-1) down to 0 (DDIM's uniform skip)."""
    return [float(t) for t in np.linspace(start * (timesteps - 1), 0, count)]


def dds_steps(sampler: Sampler, data: DataStep) -> Iterator[tuple[float, torch.Tensor]]:
    """One DDS posterior sample in the normalised unit, problem layout: (t, x) after each data step."""
    params, eta = sampler.params, sampler.params["eta"]
    steps = time_steps(params["nfe"], len(sampler.net), params["start"])
    image = sampler.estimate
    x_t = noised(to_model(image), sampler.abar(steps[0]), sampler.noise_like(image))
    for t, s in zip(steps, [*steps[1:], None], strict=True):
        eps = sampler.eps(x_t, t)
        x = data(sampler.with_phase(from_model(tweedie(x_t, eps, sampler.abar(t)))))
        if s is not None:
            image = sampler.network_image(x)
            mixed = eta * sampler.noise_like(image) + math.sqrt(1 - eta**2) * eps
            x_t = noised(to_model(image), sampler.abar(s), mixed)
        yield t, x


def mbir_steps(sampler: Sampler, data: DataStep) -> Iterator[tuple[float, torch.Tensor]]:
    """One DiffusionMBIR posterior sample in the normalised unit, problem layout: (t, x) after each data step."""
    params = sampler.params
    steps = time_steps(params["nfe"] // 2, len(sampler.net))
    x_t = sampler.noise_like(sampler.estimate)

    def consistent(x_t: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The data step on x_t read as an image, x_t / sqrt(abar_t): (new x_t, x)."""
        root = math.sqrt(sampler.abar(t))
        x = data(sampler.with_phase(from_model(x_t / root)))
        return to_model(sampler.network_image(x)) * root, x

    for t, s in zip(steps[:-1], steps[1:], strict=True):
        # predictor: the ancestral step t -> s of the respaced DDPM, then the data step
        abar_t, abar_s = sampler.abar(t), sampler.abar(s)
        z0 = tweedie(x_t, sampler.eps(x_t, t), abar_t)
        beta = 1 - abar_t / abar_s
        mean = (math.sqrt(abar_s) * beta * z0 + math.sqrt(1 - beta) * (1 - abar_s) * x_t) / (1 - abar_t)
        x_t, x = consistent(mean + math.sqrt((1 - abar_s) / (1 - abar_t) * beta) * sampler.noise_like(x_t), s)
        yield s, x
        # corrector: one Langevin step at s, step size from the signal-to-noise ratio, then the data step
        score = -sampler.eps(x_t, s) / math.sqrt(1 - abar_s)
        noise = sampler.noise_like(x_t)
        ratio = float(torch.linalg.vector_norm(noise)) / max(float(torch.linalg.vector_norm(score)), 1e-30)
        step = 2 * (params["snr"] * ratio) ** 2 * (1 - beta)
        x_t, x = consistent(x_t + step * score + math.sqrt(2 * step) * noise, s)
        yield s, x
    _, x = consistent(tweedie(x_t, sampler.eps(x_t, steps[-1]), sampler.abar(steps[-1])), 0.0)  # ends at x0
    yield 0.0, x


def dds(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``dds``."""
    sampler = Sampler(problem, params, ctx, params["init"])
    return sampler.run(params["nfe"], lambda data: dds_steps(sampler, data), Guard(magnitude=problem.complex_image))


def diffusion_mbir(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``diffusion-mbir``."""
    sampler = Sampler(problem, params, ctx)
    return sampler.run(2 * (params["nfe"] // 2) - 1, lambda data: mbir_steps(sampler, data), None)
