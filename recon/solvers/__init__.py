"""The implementations of the reconstruction methods, one module per family (declared in :mod:`recon.methods`,
which imports each implementation on first use).

Shared parts: :mod:`~recon.solvers.driver` (the iteration loop), :mod:`~recon.solvers.normalised` (the problem in
normalised units), :mod:`~recon.solvers.linalg` (||A||, the regularised normal solve).
"""
