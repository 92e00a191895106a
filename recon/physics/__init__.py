"""Forward models as ``deepinv.physics.LinearPhysics`` subclasses, batched and device-agnostic."""
