"""The CUDA path of every registered method: on a small simulated problem of each spec it accepts, the result
on ``cuda`` matches the one on the CPU (same PSNR within 0.2 dB, images within 2% relative). Skipped without
a GPU (the ``cuda`` marker, see conftest.py)."""

import numpy as np
import pytest

from recon.dynamic_phantoms import make_dynamic_phantom
from recon.errors import UserError
from recon.io.measurement import write_measurement
from recon.methods import all_methods, get_method
from recon.phantoms import shepp_logan_3d
from recon.pipeline import Request, compute
from recon.scenes import make_scene
from recon.simulate import (
    radar_geometry,
    simulate_ct_dynamic,
    simulate_ct_parallel,
    simulate_mimo_nearfield,
    simulate_mri_cartesian,
    simulate_mri_dynamic,
)

FEW = {"iterations": 5, "rounds": 3, "steps": 25, "nfe": 10}
"""Methods with these parameters run only a few iterations, rounds or steps (the paths, not the quality, are
under test)."""
SPECS = ("ct-parallel/1", "mri-cartesian/1", "mimo-nearfield/1", "ct-dynamic/1", "mri-dynamic/1")


def simulated(spec: str, rng: np.random.Generator):
    volume = shepp_logan_3d(48, 6)[2:4]
    if spec == "ct-parallel/1":
        return simulate_ct_parallel(volume, 30, noise_std=0.01, rng=rng)
    if spec == "mri-cartesian/1":
        return simulate_mri_cartesian(volume, 4, 4, "uniform1d", noise_std=0.01, with_coil_maps=True, rng=rng)
    if spec == "mimo-nearfield/1":
        geometry = radar_geometry("diagonal-12x13", None, 5, 4e9, 16e9, "9,9,11")
        return simulate_mimo_nearfield(make_scene("shapes", (11, 9, 9), rng), geometry, snr_db=30, rng=rng)
    if spec == "ct-dynamic/1":
        return simulate_ct_dynamic(make_dynamic_phantom("walnut", 12, 32), noise_std=0.005, rng=rng)
    if spec == "mri-dynamic/1":
        return simulate_mri_dynamic(make_dynamic_phantom("cardiac", 12, 32), 4, 4, noise_std=0.01, rng=rng)
    return None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuda")
    paths = {}
    for spec in SPECS:
        datasets, attrs = simulated(spec, np.random.default_rng(0))
        paths[spec] = write_measurement(folder / f"{spec.split('/')[0]}.h5", spec, datasets, attrs)
    return paths


CASES = [(m.name, spec) for m in all_methods() for spec in m.specs if spec in SPECS]


@pytest.mark.cuda
@pytest.mark.parametrize("name, spec", CASES, ids=[f"{n}-{s.split('/')[0]}" for n, s in CASES])
def test_method_on_cuda_matches_cpu(files, name, spec):
    method = get_method(name)
    params = {k: v for k, v in FEW.items() if any(p.name == k for p in method.params)}
    try:
        runs = {device: compute(Request(input=files[spec], method=name, params=params, device=device))
                for device in ("cpu", "cuda")}
    except UserError as error:
        if "no shipped" not in str(error):
            raise
        pytest.skip(str(error))  # e.g. unfolded-ista ships no weights for ct-parallel
    assert runs["cuda"].summary.device.startswith("cuda")
    cpu, gpu = (np.asarray(runs[d].image) for d in ("cpu", "cuda"))
    assert np.linalg.norm(gpu - cpu) <= 0.02 * np.linalg.norm(cpu), name
    assert abs(runs["cuda"].summary.metrics["psnr"] - runs["cpu"].summary.metrics["psnr"]) < 0.2
