"""Train the diffusion priors shipped in recon/weights/ through `recon train diffusion`.

    .venv/bin/python scripts/training_data.py            # the .npy sources, once
    .venv/bin/python scripts/train_diffusion_weights.py [--only NAME ...] [--steps N] [--device cuda]

- diffusion-ct: the MNI152 T1 template (all axial slices), CT_small (attenuation), ellipse and foam phantoms;
- diffusion-mri: diffusion-ct fine-tuned (``--init``) on the MNI152 T1 template alone (real magnitude slices: dds
  and diffusion-mbir give a 1-channel model the magnitude of complex MRI images and keep the phase of the
  data-consistent estimate), at a tenth of the learning rate.

Both: whole slices resized to 128^2, trained on random 64^2 crops (the UNet is convolutional; crops cost a quarter
of a whole slice per sample), width 32, multipliers 1,2,2,2, one block per scale (1.9 M parameters), batch 16,
Adam 5e-4 with cosine decay, EMA 0.998. On the 2-core CPU of the development machine one step takes about 1.2 s,
so the shipped CPU runs are short (their cards give the steps and the held-out scores); on a GPU use more --steps.
Never seen: the Colin27 MRI that scripts/bench_diffusion.py reconstructs, pydicom-data's 693_UNCR.dcm and the
Shepp-Logan phantom of the tests. Every source keeps its last 20% out of training, for validation.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from training_data import run_recipes  # noqa: E402

NETWORK = ("--size", "128", "--patch", "64", "--batch", "16", "--width", "32", "--mult", "1,2,2,2", "--blocks", "1")


def recipes(data: Path) -> dict[str, list[str]]:
    """`recon train diffusion` options per shipped name (without --steps, --device, --out)."""
    return {
        "diffusion-ct": ["--data", str(data / "mni152.npy"), "--data", str(data / "ct-small.npy"),
                         "--data", "phantom:ellipses", "--data", "phantom:foam", *NETWORK,
                         "--lr", "5e-4", "--ema", "0.998"],
        "diffusion-mri": ["--data", str(data / "mni152.npy"), "--init", "recon/weights/diffusion-ct.safetensors",
                          *NETWORK, "--lr", "5e-5", "--ema", "0.99"],
    }


def main() -> None:
    run_recipes("diffusion", recipes, ["--seed", "0"], __doc__.splitlines()[0], Path(__file__).name)


if __name__ == "__main__":
    main()
