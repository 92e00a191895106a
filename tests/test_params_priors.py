"""Parameter parsing and the prior registry: clear errors for unknown keys, bad values and capabilities."""

import pytest
import torch

from recon.errors import UserError
from recon.methods import get_method
from recon.params import parse_assignments
from recon.priors import get_prior, prior_names


def test_defaults_and_overrides_are_typed():
    params = get_method("tv").parse_params({"lam": "0.5", "iterations": "12", "nonneg": "no"})
    assert params == {"lam": 0.5, "iterations": 12, "dims": 3, "nonneg": False, "step_ratio": 50.0}
    # the radar-only parameters tv used to list belong to tv-radar, its own method (tv on radar files runs it)
    radar_only = {"kappa": 0.01, "cg_iterations": 5, "snr_db": None, "eps_scale": 1.0, "tv_iterations": 20}
    assert get_method("tv-radar").parse_params({"lam": "0.5"}) == {"lam": 0.5, "iterations": 30, **radar_only}


@pytest.mark.parametrize("raw, message", [
    ({"lamda": "1"}, "unknown parameter 'lamda'"),
    ({"iterations": "ten"}, "not a valid int"),
    ({"iterations": "0"}, "out of range"),
    ({"dims": "4"}, "not allowed"),
    ({"nonneg": "maybe"}, "not a valid bool"),
])
def test_bad_parameters_are_user_errors(raw, message):
    with pytest.raises(UserError, match=message):
        get_method("tv").parse_params(raw)


def test_assignments_need_an_equals_sign():
    assert parse_assignments(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UserError, match="key=value"):
        parse_assignments(["iterations"])


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown method 'nope'.*fbp"):
        get_method("nope")


def test_prior_registry_checks_capabilities():
    assert {"l0", "l1"} <= set(prior_names())
    with pytest.raises(UserError, match="unknown prior"):
        get_prior("missing", "prox")
    with pytest.raises(UserError, match="needs denoise"):
        get_prior("l1", "denoise")


def test_l1_and_l0_proxes():
    x = torch.tensor([-3.0, -0.5, 0.2, 2.0])
    assert torch.equal(get_prior("l1", "prox").prox(x, 1.0), torch.tensor([-2.0, 0.0, 0.0, 1.0]))
    # hard threshold at sqrt(2 * 0.5) = 1
    assert torch.equal(get_prior("l0", "prox").prox(x, 0.5), torch.tensor([-3.0, 0.0, 0.0, 2.0]))
    batch = torch.stack([x, torch.zeros(4)])  # R(x) per batch element
    torch.testing.assert_close(get_prior("l1", "prox").value(batch), torch.tensor([5.7, 0.0]))
    assert torch.equal(get_prior("l0", "prox").value(batch), torch.tensor([4.0, 0.0]))


def test_a_prior_of_the_wrong_dimension_is_refused_before_solving_and_not_offered():
    from recon.priors import names_with

    with pytest.raises(UserError, match="acts on 2D images.*needs one for 3D.*drunet-radar"):
        get_method("mimo-pnp").parse_params({}, prior="drunet")
    with pytest.raises(UserError, match="acts on 3D volumes.*needs one for 2D.*drunet-ct"):
        get_method("red-psm").parse_params({}, prior="drunet-radar")
    assert "drunet-radar" not in names_with("denoise", 2) and names_with("denoise", 3) == ["drunet-radar"]


def test_weights_path_gives_the_users_file_or_the_shipped_one_and_says_when_that_is_missing(tmp_path):
    from recon.weights import shipped, weights_path

    mine = tmp_path / "mine.safetensors"
    assert weights_path(mine, "drunet-ct", "recon train denoiser") == mine
    assert weights_path(None, "drunet-ct", "recon train denoiser") == shipped("drunet-ct")
    with pytest.raises(UserError, match="shipped weights no-such.safetensors are missing") as error:
        weights_path(None, "no-such", "recon train diffusion")
    assert "recon train diffusion" in error.value.fix
