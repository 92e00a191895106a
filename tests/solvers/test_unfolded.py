"""Unfolded ISTA/IHT: the untrained network is ISTA/IHT, the Haar prox is exact, weights round-trip and
load with clear errors, and the shipped weights beat plain ISTA/IHT at equal iterations."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.methods import RunContext, get_method
from recon.models.unfolded import UnfoldedConfig, UnfoldedThresholding, load_unfolded
from recon.physics.masks import make_mask
from recon.physics.mri import CartesianMRI
from recon.priors import get_prior
from recon.problem import Problem
from recon.shrinkage import HaarBasis
from recon.simulate import simulate_sparse_linear
from recon.solvers.sparse import proximal_gradient
from recon.solvers.unfolded import SHIPPED
from recon.training.unfolded import (
    Schedule,
    make_batch,
    sparse_linear_problem,
    synthetic_sparse_sampler,
    train,
    write_weights,
)
from recon.weights import WEIGHTS_DIR
from tests.solvers.helpers import sparse_problem


def run(name, problem, **raw):
    method = get_method(name)
    return method.solve(problem, method.parse_params(raw), RunContext())


def nmse(x, truth):
    return float(((x[:, 0].numpy() - truth) ** 2).sum() / (truth**2).sum())


def save(model, path):
    write_weights(model, path, {"note": "test"})
    return path


@pytest.mark.parametrize("algo, lam", [("ista", 0.05), ("iht", 0.01)])
def test_untrained_network_is_plain_ista_and_iht(tmp_path, algo, lam):
    problem = sparse_problem()
    weights = save(UnfoldedThresholding(UnfoldedConfig(algo, 15, lam, "sparse-linear/1")), tmp_path / "w.safetensors")
    unfolded = run(f"unfolded-{algo}", problem, weights=str(weights))
    plain = run(algo, problem, lam=lam, iterations=15)
    assert torch.allclose(unfolded.x, plain.x, atol=1e-12)
    assert np.allclose(unfolded.history["objective"], plain.history["objective"], rtol=1e-10)
    assert unfolded.extras["params"] == {"weights": str(weights), "lam": lam}


def test_haar_basis_is_orthonormal_on_any_even_size():
    basis = HaarBasis((24, 40), levels=4)
    assert basis.levels == 3  # 24 -> 12 -> 6 -> 3: a fourth level would need an even side
    x, y = torch.randn(2, 2, 2, 24, 40, dtype=torch.float64)
    assert torch.allclose(basis.synthesis(basis.analysis(x)), x, atol=1e-12)
    assert torch.isclose((basis.analysis(x) * y).sum(), (x * basis.synthesis(y)).sum())
    assert torch.isclose(basis.analysis(x).norm(), x.norm())
    assert int((~basis.detail).sum()) == 3 * 5  # the coarsest approximation band is not penalised


def test_wavelet_l1_prox_minimises_its_objective():
    prior = get_prior("wavelet-l1", "prox")
    x = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    tau = 0.3
    z = prior.prox(x, tau)

    def f(u):
        return float((0.5 * ((u - x) ** 2).flatten(1).sum(1) + tau * prior.value(u)).sum())

    generator = torch.Generator().manual_seed(0)
    perturbed = [f(z + 1e-3 * torch.randn(z.shape, generator=generator, dtype=z.dtype)) for _ in range(50)]
    assert f(z) < min(perturbed)
    assert f(z) < f(x)


def mri_problem():
    rng = np.random.default_rng(0)
    physics = CartesianMRI(make_mask("poisson2d", (32, 32), 3.0, acs=8, rng=rng), dtype=torch.float64)
    truth = torch.zeros(2, 2, 32, 32, dtype=torch.float64)
    truth[:, 0, 8:24, 10:20] = 1.0
    truth[1, 1, 4:12, 20:28] = 0.5
    y = physics.A(truth)
    problem = Problem(spec="mri-cartesian/1", physics=physics, y=y, x_shape=(2, 2, 32, 32),
                      output_shape=(2, 32, 32), initial=lambda: physics.A_adjoint(y), complex_image=True)
    return problem, truth


def test_wavelet_ista_objective_decreases_on_mri():
    problem, truth = mri_problem()
    result = proximal_gradient(problem, "wavelet-l1", {"lam": 1e-2, "iterations": 100}, RunContext(), "ista")
    objective = np.array(result.history["objective"])
    assert np.all(np.diff(objective) <= 1e-9 * objective[:-1])
    assert (result.x - truth).norm() < 0.7 * (problem.initial() - truth).norm()


def test_untrained_wavelet_network_is_plain_wavelet_ista_on_the_scaled_problem():
    problem, _ = mri_problem()
    batch = make_batch(problem)
    scaled = dataclasses.replace(problem, y=batch.y, sqnorm=None)
    weight = 1e-3 * batch.sqnorm  # images: lam is relative to ||A||^2
    plain = proximal_gradient(scaled, "wavelet-l1", {"lam": weight, "iterations": 12}, RunContext(), "ista")
    model = UnfoldedThresholding(UnfoldedConfig("ista", 12, 1e-3, "mri-cartesian/1", wavelet_levels=4))
    with torch.no_grad():
        x, _ = model(problem.physics, batch.y, problem.x_shape, batch.sqnorm, 1e-3 * batch.lam_factor)
    assert torch.allclose(x, plain.x, atol=1e-12)


def test_weights_round_trip(tmp_path):
    config = UnfoldedConfig("ista", 6, 0.2, "mri-cartesian/1", wavelet_levels=3, learn_thresholds=True)
    model = UnfoldedThresholding(config)
    with torch.no_grad():
        model.log_step.copy_(torch.linspace(-1, 2, 6))
        model.log_threshold.copy_(torch.linspace(1, 0, 6))
    path = save(model, tmp_path / "w.safetensors")
    loaded = load_unfolded(path)
    assert loaded.config == config
    assert torch.equal(loaded.log_step, model.log_step) and torch.equal(loaded.log_threshold, model.log_threshold)
    assert json.loads((tmp_path / "w.json").read_text()) == {"note": "test"}


def test_unusable_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        load_unfolded(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_text("not weights")
    with pytest.raises(UserError, match="not a safetensors file"):
        load_unfolded(tmp_path / "junk.safetensors")
    iht = save(UnfoldedThresholding(UnfoldedConfig("iht", 3, 0.1, "sparse-linear/1")), tmp_path / "iht.safetensors")
    with pytest.raises(UserError, match="unfolded-iht weights for sparse-linear/1, not unfolded-ista"):
        run("unfolded-ista", sparse_problem(), weights=str(iht))


@pytest.mark.parametrize("algo", ["ista", "iht"])
def test_shipped_weights_beat_plain_iterations_on_held_out_signals(algo):
    datasets, _ = simulate_sparse_linear(75, 150, 12, 10.0, 200, rng=np.random.default_rng(2024))
    problem = sparse_linear_problem(datasets, torch.device("cpu"))
    unfolded = run(f"unfolded-{algo}", problem)
    layers = len(unfolded.history["objective"])
    plain = run(algo, problem, lam=unfolded.extras["params"]["lam"], iterations=layers)
    truth = datasets["ground_truth"]
    assert nmse(unfolded.x, truth) < 0.6 * nmse(plain.x, truth)


def test_every_shipped_weight_file_has_its_card():
    for name in SHIPPED.values():
        card = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
        model = load_unfolded(WEIGHTS_DIR / f"{name}.safetensors")
        assert card["layers"] == model.config.layers and card["lambda"] == model.config.lam
        assert card["command"] and card["validation"]["trained"]["objective"] > 0


@pytest.mark.cuda
def test_unfolded_ista_and_its_training_run_on_cuda_as_on_cpu():
    datasets, _ = simulate_sparse_linear(75, 150, 12, 10.0, 50, rng=np.random.default_rng(7))
    method = get_method("unfolded-ista")
    results = []
    for device in ("cpu", "cuda"):
        problem = sparse_linear_problem(datasets, torch.device(device))
        results.append(method.solve(problem, method.parse_params({}), RunContext(device=torch.device(device))).x)
    assert results[1].is_cuda and torch.allclose(results[0], results[1].cpu(), atol=1e-4)
    model = UnfoldedThresholding(UnfoldedConfig("iht", 4, 0.05, "sparse-linear/1")).cuda()
    sample = synthetic_sparse_sampler(30, 60, 6, 10.0, 20, 0, torch.device("cuda"))
    losses = train(model, sample, "unsupervised", Schedule(steps=20, lr=0.05))
    assert np.isfinite(losses).all()
