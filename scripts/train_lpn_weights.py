"""Train the LPN weights shipped in recon/weights/ (lpn-ct, lpn-mri) with `recon train lpn`, on the CPU.

    nice -n 10 .venv/bin/python scripts/train_lpn_weights.py [--only lpn-ct|lpn-mri] [--threads 1]

- lpn-ct: real images: pydicom's CT_small.dcm (Hounsfield units mapped to attenuation), random-ellipse and
  foam phantoms;
- lpn-mri: complex images (random smooth phase): pydicom's MR_small.dcm, nibabel's anatomical.nii (T1) and
  random-ellipse phantoms.

The Shepp-Logan phantom the tests reconstruct, and the benchmark's images, are never seen. Each card records
the command of this script and of `recon train lpn`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import nibabel
import pydicom.data

from recon.weights import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parent.parent
RECON = str(Path(sys.executable).with_name("recon"))

NETWORK = ("--hidden", "48", "--layers", "4", "--beta", "20", "--sigma", "0.05", "--batch", "16", "--patch", "32",
           "--seed", "0", "--device", "cpu")


def sources() -> dict[str, tuple[str, ...]]:
    """`recon train lpn` options per shipped name (data first)."""
    anatomical = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    return {
        "lpn-ct": ("--data", pydicom.data.get_testdata_file("CT_small.dcm"), "--hu", "--data", "phantom:ellipses",
                   "--data", "phantom:foam", "--channels", "1"),
        "lpn-mri": ("--data", pydicom.data.get_testdata_file("MR_small.dcm"), "--data", str(anatomical),
                    "--data", "phantom:ellipses", "--channels", "2"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(sources()), help="train only this one")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps (half L1, half proximal matching)")
    args = parser.parse_args()
    script = shlex.join([".venv/bin/python", "scripts/train_lpn_weights.py", *sys.argv[1:]])
    for name, data in sources().items():
        if args.only and name not in args.only:
            continue
        out = WEIGHTS_DIR / f"{name}.safetensors"
        command = ["train", "lpn", *data, *NETWORK, "--steps", str(args.steps), "--out", str(out), "--overwrite"]
        subprocess.run([RECON, *command], check=True, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        card_file = out.with_suffix(".json")
        card = json.loads(card_file.read_text())
        card.update(script=script, threads=args.threads)
        card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
