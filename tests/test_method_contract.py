"""The contract every registered method keeps, on every spec it claims, with tiny problems on the CPU: it runs,
returns the output shape and dtype of the spec, records every parameter (resolved: no per-spec or data-derived
default left as None), gives the same result twice under a seed, and, where it claims ``slice_separable``, the
same result on slabs of slices as on the whole. Few iterations: the paths, not the quality, are under test
(tests/test_cuda_methods.py checks the CUDA path of the same methods)."""

import numpy as np
import pytest

from recon.errors import UserError
from recon.methods import all_methods, get_method
from recon.pipeline import Request, compute
from tests.method_files import SLICES, simulated, write_files

FEW = {"iterations": 2, "rounds": 2, "steps": 25, "nfe": 4, "inner_steps": 5, "init_iterations": 5}
"""Methods with these parameters run only a few iterations, rounds or steps."""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("contract"), {spec for m in all_methods() for spec in m.specs})


CASES = [(m.name, spec) for m in all_methods() for spec in m.specs]


def few(name: str) -> dict:
    return {k: v for k, v in FEW.items() if any(p.name == k for p in get_method(name).params)}


def run(files, name: str, spec: str, slices: str | None = None, **params):
    return compute(Request(input=files[spec], method=name, params={**few(name), **params}, slices=slices, seed=3))


@pytest.mark.parametrize("name, spec", CASES, ids=[f"{n}-{s.split('/')[0]}" for n, s in CASES])
def test_method_contract(files, name, spec):
    method = get_method(name)
    try:
        first = run(files, name, spec)
    except UserError as error:
        if "no shipped" not in str(error):
            raise
        pytest.skip(str(error))  # unfolded-ista ships no weights for ct-parallel
    image, expected = first.image, simulated(spec, np.random.default_rng(0))[0]["ground_truth"]
    assert image.shape == expected.shape, (image.shape, expected.shape)
    assert image.dtype == (np.complex64 if spec == "mimo-nearfield/1" else np.float32)
    assert np.isfinite(image).all()
    recorded = first.attrs["params"]
    assert {p.name for p in method.params} <= set(recorded), sorted({p.name for p in method.params} - set(recorded))
    unresolved = [name for name in resolved_by_registry(method, spec, image.shape) if recorded[name] is None]
    assert not unresolved, unresolved
    assert np.array_equal(run(files, name, spec).image, image)  # deterministic under the seed


def resolved_by_registry(method, spec: str, shape: tuple[int, ...]) -> set[str]:
    """The parameters whose defaults depend on the spec or the data: the output must record a value for each."""
    names = {p.name for p in method.params if p.by_spec}
    if method.data_defaults is not None:
        blank = {p.name: None for p in method.params}
        names |= set(method.data_defaults(blank, spec, shape[0]))
    return names


SEPARABLE = [(name, spec) for name, spec in CASES if spec in SLICES]


@pytest.mark.parametrize("name, spec", SEPARABLE, ids=[f"{n}-{s.split('/')[0]}" for n, s in SEPARABLE])
def test_slice_separable_methods_give_the_same_result_in_slabs(files, name, spec):
    method = get_method(name)
    settings = {"planes": 1} if any(p.name == "planes" for p in method.params) else {}
    if not method.separable(method.parse_params({**few(name), **settings}), spec):
        pytest.skip(f"{name} couples the slices")
    try:
        whole = run(files, name, spec, **settings).image
    except UserError as error:
        if "no shipped" not in str(error):
            raise
        pytest.skip(str(error))
    split = SLICES[spec] // 3
    slabs = np.concatenate([run(files, name, spec, f"{a}:{b}", **settings).image
                            for a, b in ((0, split), (split, SLICES[spec]))])
    # equal up to rounding; networks' batched convolutions round differently with the batch size (measured: 1e-3 of
    # the maximum after 2 pnp-admm iterations; tests/solvers/test_pnp.py: 3e-2 after 10)
    tolerance = 1e-2 if method.prior_capability in ("denoise", "grad", "eps") else 1e-5
    np.testing.assert_allclose(slabs, whole, atol=tolerance * float(np.abs(whole).max()))
