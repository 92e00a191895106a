"""Train the LPN weights shipped in recon/weights/ (lpn-ct, lpn-mri) with `recon train lpn`.

    .venv/bin/python scripts/training_data.py            # the .npy sources, once
    .venv/bin/python scripts/train_lpn_weights.py [--only lpn-ct|lpn-mri] [--steps N] [--device cuda]

- lpn-ct: real images: CT_small (attenuation), every 4th MNI152 slice, scikit-image pictures, random-ellipse
  and foam phantoms;
- lpn-mri: complex images (random smooth phase): the MNI152 T1 template and random-ellipse phantoms.

The Shepp-Logan phantom the tests reconstruct, and the benchmark's images (693_UNCR, Colin27), are never seen.
Each card records the command of this script and of `recon train lpn`. The shipped files were trained on a
GPU; on one CPU thread a step takes about 0.5 s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from train_denoiser_weights import PICTURES  # noqa: E402
from training_data import DEFAULT_OUT, relative_data, train  # noqa: E402

NETWORK = ("--hidden", "48", "--layers", "4", "--beta", "20", "--sigma", "0.05", "--batch", "32", "--patch", "48",
           "--seed", "0")


def recipes(data: Path) -> dict[str, tuple[str, ...]]:
    """`recon train lpn` options per shipped name (data first)."""
    pictures = [item for name in PICTURES for item in ("--data", f"skimage:{name}")]
    return {
        "lpn-ct": ("--data", str(data / "ct-small.npy"), "--data", str(data / "mni152-sparse.npy"), *pictures,
                   "--data", "phantom:ellipses", "--data", "phantom:foam", "--channels", "1"),
        "lpn-mri": ("--data", str(data / "mni152.npy"), "--data", "phantom:ellipses", "--channels", "2"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(recipes(DEFAULT_OUT)), help="train only this one")
    parser.add_argument("--steps", type=int, default=20000, help="optimiser steps (half L1, half proximal matching)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="folder of scripts/training_data.py")
    parser.add_argument("--out", type=Path, default=ROOT / "recon" / "weights")
    args = parser.parse_args()
    if not (args.data / "mni152.npy").exists():
        sys.exit(f"{args.data}: no training data; run scripts/training_data.py first")
    data = relative_data(args.data)
    for name, options in recipes(data).items():
        if args.only and name not in args.only:
            continue
        out = args.out / f"{name}.safetensors"
        command = ["train", "lpn", *options, *NETWORK, "--steps", str(args.steps),
                   "--device", args.device, "--out", str(out), "--overwrite"]
        train(command, out, [f"scripts/{Path(__file__).name}", *sys.argv[1:]])


if __name__ == "__main__":
    main()
