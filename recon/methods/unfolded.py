"""Declarations of the trained unfolded networks, unfolded-ista and unfolded-iht (implementations in
:mod:`recon.solvers.unfolded`)."""

from __future__ import annotations

from recon.methods import Method
from recon.params import Param

PARAMS = (
    Param("weights", str, None, "W.safetensors from `recon train unfolded`; default: the shipped weights for "
          "the file's spec"),
    Param("lam", float, None, "sparsity weight (sparse: in 1/2||y - Ax||^2 + lam R(x); images: relative to "
          "||A||^2); default: the weights' training value", low=0.0),
)

METHODS = (
    Method("unfolded-ista", "deep unfolding", "Deep unfolded ISTA: T soft-thresholding layers with learned step sizes "
           "(wavelet basis for images).", ("sparse-linear/1", "mri-cartesian/1", "ct-parallel/1"), PARAMS,
           "recon.solvers.unfolded:unfolded"),
    Method("unfolded-iht", "deep unfolding", "Deep unfolded IHT: T hard-thresholding layers with learned step sizes.",
           ("sparse-linear/1",), PARAMS, "recon.solvers.unfolded:unfolded"),
)
