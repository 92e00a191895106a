"""napari plugin for recon (npe2 manifest ``napari.yaml``): a reader for every recon HDF5 spec, a writer to
``reconstruction/1``, sample data, and the Reconstruct and Compare dock widgets.

Importing this package keeps torch from importing triton in the viewer's process: triton's bundled LLVM
clashes with the LLVM of Mesa's software OpenGL (llvmpipe: Xvfb, VMs, remote desktops), and importing it
after napari has made its OpenGL context crashes the process (a segmentation fault). recon never uses
torch.compile, so nothing is lost; set ``RECON_NAPARI_ALLOW_TRITON=1`` to leave triton importable.
"""

import os
import sys

if not os.environ.get("RECON_NAPARI_ALLOW_TRITON"):
    sys.modules.setdefault("triton", None)  # `import triton` now raises ImportError; torch then runs without it
