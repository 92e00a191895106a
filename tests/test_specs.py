"""The spec registry (recon.specs): one kind per measurement YAML, traits that say what the built-in specs are, and
declarations that agree with their YAML (viewer datasets, simulator options the CLI has)."""

import inspect

import pytest

from recon.cli import simulate
from recon.io.specs import load_spec, spec_names
from recon.specs import SpecKind, all_kinds, get_kind, spec_ids

BUILTIN = ("ct-parallel/1", "mri-cartesian/1", "ct-dynamic/1", "mri-dynamic/1", "sparse-linear/1", "mimo-nearfield/1")


def test_every_measurement_yaml_has_a_kind_and_every_kind_a_yaml():
    assert set(spec_names()) - {"reconstruction/1"} == {kind.id for kind in all_kinds()} == set(BUILTIN)
    for kind in all_kinds():
        assert load_spec(kind.id).id == kind.id and kind.yaml.endswith(f"{kind.name}.yaml")


def test_the_traits_group_the_builtin_specs_as_recon_treats_them():
    assert spec_ids(lambda kind: kind.linear_slices) == ("ct-parallel/1", "mri-cartesian/1")
    assert spec_ids(lambda kind: kind.dynamic) == ("ct-dynamic/1", "mri-dynamic/1")
    assert spec_ids(lambda kind: kind.complex_image) == ("mri-cartesian/1", "mri-dynamic/1", "mimo-nearfield/1")
    assert spec_ids(lambda kind: kind.reflectivity) == ("mimo-nearfield/1",)
    assert spec_ids(lambda kind: kind.image_dims == 1) == ("sparse-linear/1",)
    assert get_kind("sparse-linear/1").output_axes(2) == ("sample", "n")
    assert get_kind("mri-dynamic/1").output_axes(3) == ("t", "y", "x")
    assert get_kind("ct-parallel/1").output_axes(2) == ("y", "x")


@pytest.mark.parametrize("spec", BUILTIN)
def test_a_kind_agrees_with_its_yaml_and_the_cli(spec):
    kind, yaml = get_kind(spec), load_spec(spec)
    assert {view.key for view in kind.views} <= set(yaml.datasets)
    assert callable(kind.builder())
    assert kind.simulate is not None and kind.simulate.options <= set(inspect.signature(simulate).parameters)



def test_every_builtin_kind_but_sparse_linear_brings_its_noise_estimators():
    """recon.noise finds a spec's estimators only through its kind: a built-in kind without them would leave its
    methods' auto parameters on their fixed defaults (and estimate_noise refusing its files)."""
    from recon.plugins import load_reference

    for spec in BUILTIN:
        kind = get_kind(spec)
        if spec == "sparse-linear/1":
            assert kind.noise is None and kind.file_noise is None
            continue
        assert kind.noise is not None and kind.file_noise is not None, spec
        assert list(inspect.signature(load_reference(kind.noise)).parameters) == ["problem", "attrs"], spec
        assert list(inspect.signature(load_reference(kind.file_noise)).parameters) == ["measurement", "slices"], spec

def test_an_unknown_spec_and_a_malformed_kind_are_refused():
    from recon.errors import UserError

    with pytest.raises(UserError, match="unknown spec 'ct-fan/1'"):
        get_kind("ct-fan/1")
    with pytest.raises(ValueError, match="batch in"):
        SpecKind("x/1", "recon.data_specs:x.yaml", "x:build", batch="slices")
