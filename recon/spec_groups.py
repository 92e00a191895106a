"""Which measurement specs share a trait, torch-free (for method declarations, the problem layout and priors).

A spec is named by its id (``ct-parallel/1``); its full description is the YAML in ``data_specs/``.
"""

from __future__ import annotations

SLICE_SPECS = ("ct-parallel/1", "mri-cartesian/1")
"""Static images or volumes whose batch axis is z: 2D priors act on their slices."""
DYNAMIC_SPECS = ("ct-dynamic/1", "mri-dynamic/1")
"""Specs whose batch axis is time (frames) rather than z."""
RADAR_SPECS = ("mimo-nearfield/1",)
"""Specs of complex 3D radar reflectivities (one volume, no slice axis)."""
SPARSE_SPECS = ("sparse-linear/1",)
"""Batches of 1D signals under a dense matrix."""
ALL_SPECS = (*SLICE_SPECS, *DYNAMIC_SPECS, *SPARSE_SPECS, *RADAR_SPECS)
COMPLEX_SPECS = ("mri-cartesian/1", "mri-dynamic/1", *RADAR_SPECS)
"""Specs whose images are complex (two channels, real and imaginary, in the problem layout)."""
