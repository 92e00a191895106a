"""Declarations of the partially separable models of dynamic images, psm and red-psm (implementations in
:mod:`recon.solvers.psm`).

Defaults: tuned by hand on the walnut phantom of seed 1 at P = 64 and 128 (one view per frame, 0.5 % noise);
the benchmark (scripts/bench_red_psm.py) uses seed 0. A small K suits few frames: at P = 128, K = 3 reached
20.2 dB in 10 rounds where K = 6 needed 40 for 20.4. More ``psm`` steps fit the noise (P = 64, K = 6: 14.3 dB at the
start, 13.3 after 2500 steps), hence 250.
"""

from __future__ import annotations

from recon.methods import Method
from recon.methods.plug_and_play import DENOISER_WEIGHTS
from recon.params import Param
from recon.specs import spec_ids

DYNAMIC = spec_ids(lambda kind: kind.dynamic)

MODEL_PARAMS = (
    Param("order", int, 3, "PSM order K: the model has K+1 spatial and temporal basis functions", low=0, high=100),
    Param("knots", int, 6, "d: spline knots of each temporal function (the latent Z is (K+1, d))", low=1,
          high=10000),
    Param("xi", float, 1e-6, "weight of ||Z||^2", low=0.0),
    Param("chi", float, 1e-6, "weight of ||Lambda||^2", low=0.0),
    Param("lr", float, 5e-3, "Adam learning rate on (Lambda, Z)", low=1e-8),
    Param("init_iterations", int, 50, "CG steps of the least-squares fit of Lambda at the start", low=0,
          high=100000),
)

METHODS = (
    Method("psm", "RED-PSM", "Partially separable model F = Lambda Psi (spline temporal basis) fitted to the data, "
           "no prior.", DYNAMIC, (
               *MODEL_PARAMS,
               Param("steps", int, 250, "Adam steps", low=0, high=10**7),
               Param("tol", float, 1e-5, "stop when the objective changes by less than this (relative) over 25 steps",
                     low=0.0)),
           "recon.solvers.psm:psm"),
    Method("red-psm", "RED-PSM", "RED-PSM: ADMM between a partially separable model and a full-rank sequence "
           "regularised by RED.", DYNAMIC, (
               *MODEL_PARAMS,
               Param("lam", float, 0.01, "RED weight lambda, relative to the normalised data term", low=0.0),
               Param("beta", float, 0.01, "ADMM penalty beta on Lambda Psi = f", low=1e-12),
               Param("sigma", float, 0.1, "denoiser noise level in the normalised unit (frames ~ [0, 1])", low=0.0),
               Param("rounds", int, 50, "at most this many ADMM rounds", low=1, high=100000),
               Param("inner_steps", int, 25, "Adam steps on (Lambda, Z) per round", low=1, high=100000),
               Param("tol", float, 1e-3, "stop when the change of f and the primal residual are both below this",
                     low=0.0),
               DENOISER_WEIGHTS),
           "recon.solvers.psm:red_psm", prior_capability="denoise", default_prior="drunet"),
)
