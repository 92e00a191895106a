"""Forward models as ``deepinv.physics.LinearPhysics`` subclasses, batched and device-agnostic."""

FBP_FILTERS = ("ramp", "shepp-logan", "hann")
"""Filters of :meth:`recon.physics.ct.ParallelBeamCT.fbp`. Defined here, not in ``ct``, so that the method
registry can offer them without importing the projector (scipy.sparse, ~0.1 s at every CLI start)."""
