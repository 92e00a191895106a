"""Train the LPN weights shipped in recon/weights/ (lpn-ct, lpn-mri) with `recon train lpn`.

    .venv/bin/python scripts/training_data.py            # the .npy sources, once
    .venv/bin/python scripts/train_lpn_weights.py [--only lpn-ct|lpn-mri] [--steps N] [--device cuda]

- lpn-ct: real images: CT_small (attenuation), every 4th MNI152 slice, scikit-image pictures, random-ellipse
  and foam phantoms;
- lpn-mri: complex images (random smooth phase): the MNI152 T1 template and random-ellipse phantoms.

The Shepp-Logan phantom the tests reconstruct, and the benchmark's images (693_UNCR, Colin27), are never seen.
Each card records the command of this script and of `recon train lpn`. lpn-ct was trained on a GPU (10000
steps), lpn-mri on the CPU (5000 steps, about 0.67 s a step on 2 threads).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from train_denoiser_weights import PICTURES  # noqa: E402
from training_data import run_recipes  # noqa: E402

NETWORK = ("--hidden", "48", "--layers", "4", "--beta", "20", "--sigma", "0.05", "--batch", "32", "--patch", "48",
           "--seed", "0")


def recipes(data: Path) -> dict[str, list[str]]:
    """`recon train lpn` options per shipped name (data first)."""
    pictures = [item for name in PICTURES for item in ("--data", f"skimage:{name}")]
    return {
        "lpn-ct": ["--data", str(data / "ct-small.npy"), "--data", str(data / "mni152-sparse.npy"), *pictures,
                   "--data", "phantom:ellipses", "--data", "phantom:foam", "--channels", "1"],
        "lpn-mri": ["--data", str(data / "mni152.npy"), "--data", "phantom:ellipses", "--channels", "2"],
    }


def main() -> None:
    run_recipes("lpn", recipes, list(NETWORK), __doc__.splitlines()[0], Path(__file__).name)

if __name__ == "__main__":
    main()
