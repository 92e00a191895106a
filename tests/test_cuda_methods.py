"""The CUDA path of every registered method: on a small simulated problem of each spec it accepts, the result
on ``cuda`` matches the one on the CPU (same PSNR within 0.2 dB, images within 2% relative). Skipped without
a GPU (the ``cuda`` marker, see conftest.py)."""

import numpy as np
import pytest

from recon.errors import UserError
from recon.methods import all_methods, get_method
from recon.pipeline import Request, compute
from tests.method_files import write_files

FEW = {"iterations": 5, "rounds": 3, "steps": 25, "nfe": 10}
"""Methods with these parameters run only a few iterations, rounds or steps (the paths, not the quality, are
under test)."""
SPECS = ("ct-parallel/1", "mri-cartesian/1", "mimo-nearfield/1", "ct-dynamic/1", "mri-dynamic/1")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("cuda"), SPECS)


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
