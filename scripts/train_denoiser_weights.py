"""Train the denoisers shipped in recon/weights/ (drunet-ct, drunet-mri) through `recon train denoiser`.

    .venv/bin/python scripts/train_denoiser_weights.py [--only drunet-ct] [--steps N]

One CPU thread, about 7 minutes each (0.1 s per step of 16 patches of 48^2). Data, all offline:
- drunet-ct: pydicom's CT_small.dcm (128^2, in HU), 24 random-ellipse and 24 foam phantoms (128^2), and
  scikit-image's camera picture; pydicom-data's 693_UNCR.dcm head CT is NOT used: it is kept whole for the
  benchmark, and so is the Shepp-Logan phantom the tests use.
- drunet-mri: one channel, applied to the real and imaginary parts of MRI images separately (a 2-channel
  network trained on random-phase patches for 4000 steps denoised phase-0 images worse than it found them:
  34.0 -> 25.2 dB at sigma 0.02, where the 1-channel CT network gave 39.2 dB); pydicom's MR_small.dcm (64^2),
  nibabel's anatomical.nii (25 slices of 41 x 33, hence 32^2 patches), random ellipses and the camera,
  moon and coins pictures; nibabel's example4d.nii.gz is NOT used: it is kept for the MRI benchmark.
Every source also keeps its last 20% (slices, or columns of single images) out of training for validation.
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
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parent.parent
RECON = str(Path(sys.executable).with_name("recon"))
ANATOMICAL = str(Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii")
RECIPES = {
    "drunet-ct": ["--data", get_testdata_file("CT_small.dcm"), "--hu", "--data", "phantom:ellipses",
                  "--data", "phantom:foam", "--data", "skimage:camera", "--channels", "1", "--patch", "48",
                  "--batch", "16"],
    "drunet-mri": ["--data", get_testdata_file("MR_small.dcm"), "--data", ANATOMICAL, "--data", "phantom:ellipses",
                   "--data", "skimage:camera", "--data", "skimage:moon", "--data", "skimage:coins",
                   "--channels", "1", "--patch", "32", "--batch", "24"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), default=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in args.only:
        out = ROOT / "recon" / "weights" / f"{name}.safetensors"
        command = [RECON, "train", "denoiser", *RECIPES[name], "--steps", str(args.steps), "--sigma-max", "0.2",
                   "--device", "cpu", "--seed", "0", "--out", str(out), "--overwrite"]
        print(shlex.join(command), flush=True)
        subprocess.run(command, check=True, env=env)
        card_file = out.with_suffix(".json")
        card = json.loads(card_file.read_text())
        card["script"] = shlex.join([".venv/bin/python", "scripts/train_denoiser_weights.py", *sys.argv[1:]])
        card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
