"""Train the denoisers shipped in recon/weights/ through `recon train denoiser`.

    .venv/bin/python scripts/training_data.py            # the .npy sources, once
    .venv/bin/python scripts/train_denoiser_weights.py [--only NAME ...] [--steps N] [--device cuda]

- drunet-ct, 2D, width 32, 2 blocks: CT_small (attenuation), every 4th MNI152 slice, 12 scikit-image
  pictures, ellipse and foam phantoms;
- drunet-mri, 2D, width 32, 2 blocks: the MNI152 T1 template (all axial slices), the pictures, ellipse phantoms;
- drunet-3d, 3D, width 16, 1 block: the MNI152 volume, 3D ellipse and foam phantoms;
- drunet-radar, 3D, width 16, 1 block: 32 random radar scenes (magnitude).

The 2D networks see half their patches negated (--signed) so that they also denoise the real and imaginary
parts of complex MRI images. Never seen: pydicom-data's 693_UNCR.dcm head CT and the Colin27 MRI, which
scripts/bench_priors.py reconstructs, nor the Shepp-Logan phantom of the tests. Every source keeps its last
20% (slices, or columns of single images) out of training, for validation.

The shipped files were trained on a GPU (one H100, the four at once); on a CPU, expect about 0.3 s per step
of the 2D networks at the default batch (use fewer --steps and a smaller --batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from training_data import run_recipes  # noqa: E402

PICTURES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "moon", "coins", "brick", "grass", "gravel",
            "clock", "cell")
NETWORK_2D = ("--dim", "2", "--width", "32", "--blocks", "2", "--patch", "64", "--batch", "32", "--signed")
NETWORK_3D = ("--dim", "3", "--width", "16", "--blocks", "1", "--patch", "32", "--batch", "8")


def recipes(data: Path) -> dict[str, list[str]]:
    """`recon train denoiser` options per shipped name (without --steps, --device, --out)."""
    pictures = [item for name in PICTURES for item in ("--data", f"skimage:{name}")]
    return {
        "drunet-ct": ["--data", str(data / "ct-small.npy"), "--data", str(data / "mni152-sparse.npy"), *pictures,
                      "--data", "phantom:ellipses", "--data", "phantom:foam", *NETWORK_2D],
        "drunet-mri": ["--data", str(data / "mni152.npy"), *pictures, "--data", "phantom:ellipses", *NETWORK_2D],
        "drunet-3d": ["--data", str(data / "mni152.npy"), "--data", "phantom:ellipses", "--data", "phantom:foam",
                      *NETWORK_3D],
        "drunet-radar": ["--data", str(data / "radar-scenes.npy"), *NETWORK_3D],
    }


def main() -> None:
    run_recipes("denoiser", recipes, ["--sigma-max", "0.2", "--seed", "0"], __doc__.splitlines()[0],
                Path(__file__).name)

if __name__ == "__main__":
    main()
