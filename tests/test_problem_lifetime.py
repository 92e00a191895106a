"""A built problem must be freed as soon as it is dropped, without waiting for the garbage collector: a streamed run
builds one per slab, and a reference cycle kept each slab's measurements alive (99 MB per slab at 512^2)."""

import gc
import weakref

import numpy as np
import torch

from recon.io.layouts import open_measurement
from recon.io.measurement import write_measurement
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel


def test_a_dropped_problem_is_freed_without_the_garbage_collector(tmp_path):
    datasets, attrs = simulate_ct_parallel(np.random.default_rng(0).random((3, 16, 16)).astype(np.float32), 12,
                                           noise_std=0.01)
    path = tmp_path / "ct.h5"
    write_measurement(path, "ct-parallel/1", datasets, attrs)
    gc.disable()
    try:
        with open_measurement(path) as measurement:
            problem = build_problem(measurement, None, torch.device("cpu"))
        assert problem.noise().std > 0  # the cached noise estimate still works
        alive = weakref.ref(problem)
        del problem
        assert alive() is None
    finally:
        gc.enable()
