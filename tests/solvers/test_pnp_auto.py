"""The learned priors' strength chosen from the noise level (pnp-admm's ``sigma=auto``, red's ``lam=auto``:
recon.solvers.pnp.run_with_strength): away from the 1 % noise the default was tuned at, the rule beats the fixed
default; the chosen value and the rule are recorded; a number still overrides; without a noise level the fixed
default is used; a target out of reach is warned about; pnp-pgd and lpn take numbers only."""

import dataclasses

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.methods.plug_and_play import PNP_ADMM_SIGMA
from recon.metrics import quality
from recon.phantoms import shepp_logan_3d
from recon.problems import build_problem
from recon.simulate import simulate_mri_cartesian

pytestmark = pytest.mark.usefixtures("one_thread")

FAR_NOISE = 0.1
"""Ten times the 1 % the fixed defaults were tuned at."""
ITERATIONS = 15
"""Half of pnp-admm's default, for time (both runs)."""
FIXED_SIGMA = PNP_ADMM_SIGMA["mri-cartesian/1"]
"""The number auto replaced (and starts from) on MRI."""
MARGIN_DB = 6.0
"""pnp-admm with sigma=auto over its fixed default at FAR_NOISE: measured 34.36 against 21.27 dB."""


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """One 64^2 Shepp-Logan slice, MRI with 4 coils at 4x and 10 % noise (the file states its noise_std)."""
    datasets, attrs = simulate_mri_cartesian(shepp_logan_3d(64, 8)[3:4], 4, 4.0, "uniform1d", noise_std=FAR_NOISE,
                                             with_coil_maps=True, rng=np.random.default_rng(0))
    path = tmp_path_factory.mktemp("pnp-auto") / "m.h5"
    write_measurement(path, "mri-cartesian/1", datasets, attrs)
    with MeasurementFile(path) as measurement:
        return build_problem(measurement, None, torch.device("cpu"))


def run(problem, name, **raw):
    method = get_method(name)
    torch.manual_seed(0)
    return method.solve(problem, method.parse_params(raw), RunContext())


def psnr(problem, result):
    return quality(problem.to_output(result.x)["reconstruction"], problem.ground_truth)["psnr"]


@pytest.fixture(scope="module")
def fixed_and_auto(noisy):
    return (run(noisy, "pnp-admm", sigma=FIXED_SIGMA, iterations=ITERATIONS),
            run(noisy, "pnp-admm", sigma="auto", iterations=ITERATIONS))


def test_auto_beats_the_fixed_default_far_from_the_tuning_noise(noisy, fixed_and_auto):
    fixed, auto = fixed_and_auto
    assert psnr(noisy, auto) > psnr(noisy, fixed) + MARGIN_DB, (psnr(noisy, auto), psnr(noisy, fixed))


def test_the_chosen_value_and_rule_are_recorded(noisy, fixed_and_auto):
    fixed, auto = fixed_and_auto
    chosen, noise = auto.extras["params"], noisy.noise()
    assert chosen["sigma"] > 2 * fixed.extras["params"]["sigma"]  # 10x the noise: a much stronger denoiser
    assert chosen["sigma_rule"].startswith("discrepancy principle") and "tau 1" in chosen["sigma_rule"]
    assert chosen["sigma_reached"] and 1 <= chosen["sigma_solves"] <= 6
    assert chosen["noise_source"] == "file" and chosen["noise_std"] == pytest.approx(noise.std)
    # the returned image is the one at the chosen value: its residual is the discrepancy target (5 %)
    residual = float(torch.linalg.vector_norm(noisy.physics.A(auto.x) - noisy.y))
    assert residual == pytest.approx(noise.norm, rel=0.05)
    assert "sigma_rule" not in fixed.extras["params"]


def test_a_number_overrides_auto(noisy):
    result = run(noisy, "pnp-admm", sigma=0.2, iterations=5)
    assert result.extras["params"]["sigma"] == 0.2 and "sigma_rule" not in result.extras["params"]


def test_without_a_noise_level_auto_keeps_the_fixed_default(noisy):
    result = run(dataclasses.replace(noisy, noise=None), "pnp-admm", sigma="auto", iterations=5)
    assert result.extras["params"]["sigma"] == FIXED_SIGMA
    assert result.extras["params"]["sigma_rule"].startswith("fixed default (no noise level")
    assert torch.equal(result.x, run(noisy, "pnp-admm", sigma=FIXED_SIGMA, iterations=5).x)


def test_auto_is_the_mri_default_and_ct_keeps_its_number(noisy):
    method = get_method("pnp-admm")
    assert method.resolve(method.parse_params({}), noisy)["sigma"] == "auto"
    sigma = next(p for p in method.params if p.name == "sigma")
    assert sigma.by_spec["ct-parallel/1"] == PNP_ADMM_SIGMA["ct-parallel/1"]


def test_on_mri_auto_never_goes_below_the_fixed_sigma(noisy):
    """At a noise level 100x below the true one the principle asks for a far weaker denoiser; on MRI the search
    is held at the fixed sigma (the residual cannot see the aliasing that a weak denoiser leaves), said in the
    rule, without a warning."""
    noise = noisy.noise()
    quiet = dataclasses.replace(noise, sq_norms=noise.sq_norms * 1e-4)
    method, warnings = get_method("pnp-admm"), []
    params = method.parse_params({"sigma": "auto", "iterations": 3})
    result = method.solve(dataclasses.replace(noisy, noise=lambda: quiet), params, RunContext(warn=warnings.append))
    chosen = result.extras["params"]
    assert chosen["sigma"] == FIXED_SIGMA and not chosen["sigma_reached"], chosen
    assert "held at its floor 0.03" in chosen["sigma_rule"], chosen
    assert not any("did not reach" in w for w in warnings), warnings


@pytest.mark.parametrize("name", ["pnp-pgd", "lpn"])
def test_pnp_pgd_and_lpn_take_numbers_only(name):
    """The discrepancy principle measured worse than their defaults (see recon.solvers.pnp): no auto for them."""
    strength = {"pnp-pgd": "sigma", "lpn": "tau"}[name]
    with pytest.raises(UserError, match="not a valid float"):
        get_method(name).parse_params({strength: "auto"})


def test_red_lam_auto_reaches_the_discrepancy_target(noisy):
    """red's search (warm-started RED iterations) moves lam until ||A x - y|| is within 5 % of the noise norm."""
    result = run(noisy, "red", lam="auto", iterations=10)
    chosen = result.extras["params"]
    assert chosen["lam_reached"] and chosen["lam_rule"].startswith("discrepancy principle"), chosen
    residual = float(torch.linalg.vector_norm(noisy.physics.A(result.x) - noisy.y))
    assert residual == pytest.approx(noisy.noise().norm, rel=0.05)
    assert chosen["lam"] > 2 * 0.1  # 10x the noise the MRI default (0.1) was tuned at: more weight on the prior


def test_a_target_out_of_reach_is_said(noisy):
    """A noise level no image can explain (100x the true one): the search ends at sigma's upper bound, records
    that it did not reach the target, and warns (never a silent pick)."""
    noise = noisy.noise()
    far = dataclasses.replace(noise, sq_norms=noise.sq_norms * 1e4)
    method, warnings = get_method("pnp-admm"), []
    params = method.parse_params({"sigma": "auto", "iterations": 3})
    result = method.solve(dataclasses.replace(noisy, noise=lambda: far), params, RunContext(warn=warnings.append))
    assert result.extras["params"]["sigma_reached"] is False and result.extras["params"]["sigma"] == 1.0
    assert any("sigma=auto did not reach the discrepancy target" in w for w in warnings), warnings


def test_separability_follows_the_default_of_the_files_spec():
    """planes 1 with sigma unset: slice-separable on CT (a number), not on MRI (auto); unknown spec: not (safe)."""
    method = get_method("pnp-admm")
    params = method.parse_params({"planes": "1"})
    assert method.separable(params, "ct-parallel/1")
    assert not method.separable(params, "mri-cartesian/1") and not method.separable(params)
    assert method.separable(method.parse_params({"planes": "1", "sigma": "0.03"}), "mri-cartesian/1")


@pytest.mark.parametrize(("name", "raw"), [("pnp-admm", {"sigma": "auto", "planes": 1}), ("red", {"lam": "auto"})])
def test_auto_couples_the_slices(name, raw):
    """One strength is chosen for all the slices, so `recon batch --slab` must refuse auto (a slab would choose its
    own); with a number the methods stay slice-separable."""
    method = get_method(name)
    assert not method.separable(method.parse_params(raw))
    assert method.separable(method.parse_params({k: v for k, v in raw.items() if v != "auto"}), "ct-parallel/1")
