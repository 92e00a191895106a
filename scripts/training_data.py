"""Write the offline training sources of the shipped priors as .npy volumes (z, y, x), for `recon train`.

    .venv/bin/python scripts/training_data.py [--out build/training-data]

Everything comes from packages (docs/guides/training.md, data that installs offline), nothing is downloaded:

- ct-small.npy (1, 128, 128) float32: pydicom's CT_small.dcm, Hounsfield units mapped to attenuation
  max(HU + 1000, 0) / 1000;
- mni152.npy (189, 233, 197) uint8: nilearn's MNI152 2009a T1 template (1 mm), axial slices, [0, 1] as 0..255;
- mni152-sparse.npy (48, 233, 197) uint8: every 4th slice of mni152.npy (so that it does not outweigh the
  pictures in a mix);
- radar-scenes.npy (1536, 64, 64) float16: 32 random 3D radar scenes of recon.scenes (magnitude, 48 slices
  each), stacked along z.

Kept out on purpose: pydicom-data's 693_UNCR.dcm head CT and the Colin27 MRI (mricron-data), which
scripts/bench_priors.py reconstructs, and the Shepp-Logan phantom the tests use. The files are written once
(an existing file is kept) so that a GPU machine can be sent the same bytes (they fit in 40 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "training-data"
RADAR_SCENES = 32
RADAR_SHAPE = (48, 64, 64)


def ct_small() -> np.ndarray:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    dataset = dcmread(get_testdata_file("CT_small.dcm"))
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    return (np.maximum(hu + 1000.0, 0.0) / 1000.0).astype(np.float32)[None]


def mni152() -> np.ndarray:
    from nilearn.datasets import load_mni152_template

    volume = np.asanyarray(load_mni152_template(resolution=1).dataobj)  # (x, y, z), [0, 1]
    axial = np.transpose(volume, (2, 1, 0))[:, ::-1]  # (z, y, x), anterior up
    return np.round(np.clip(axial, 0, 1) * 255).astype(np.uint8)


def radar_scenes() -> np.ndarray:
    from recon.scenes import magnitude_stack

    return magnitude_stack(RADAR_SCENES, RADAR_SHAPE, seed=0)


def build(out: Path) -> dict[str, Path]:
    """Write the missing files into ``out``; returns name -> path of every file."""
    out.mkdir(parents=True, exist_ok=True)
    makers = {"ct-small": ct_small, "mni152": mni152, "radar-scenes": radar_scenes,
              "mni152-sparse": lambda: np.load(out / "mni152.npy")[::4]}
    paths = {}
    for name, make in makers.items():
        path = paths[name] = out / f"{name}.npy"
        if not path.exists():
            volume = np.ascontiguousarray(make())
            temporary = path.with_suffix(".tmp.npy")
            np.save(temporary, volume)
            temporary.replace(path)
            print(f"wrote {path}: {volume.shape} {volume.dtype}")
    return paths


def run_recipes(kind: str, recipes: Callable[[Path], dict[str, list[str]]], options: list[str], description: str,
                script: str) -> None:
    """The command line of the scripts that train shipped weights: ``recon train KIND`` with ``recipes(data)[name]``
    plus ``options`` for each name picked by ``--only`` (all by default), written to ``--out/NAME.safetensors``
    with the script's own command line added to each card."""
    names = sorted(recipes(DEFAULT_OUT))
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", nargs="*", choices=names, help="train only these")
    parser.add_argument("--steps", type=int, default=20000, help="optimiser steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="folder of scripts/training_data.py")
    parser.add_argument("--out", type=Path, default=ROOT / "recon" / "weights")
    args = parser.parse_args()
    if not (args.data / "mni152.npy").exists():
        sys.exit(f"{args.data}: no training data; run scripts/training_data.py first")
    data = Path(os.path.relpath(args.data.resolve(), ROOT))  # the cards record paths relative to the repository
    for name in args.only or names:
        out = args.out / f"{name}.safetensors"
        command = [sys.executable, "-m", "recon.cli", "train", kind, *recipes(data)[name], *options,
                   "--steps", str(args.steps), "--device", args.device, "--out", str(out), "--overwrite"]
        print(shlex.join(command), flush=True)
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": path})
        card_file = out.with_suffix(".json")
        card = json.loads(card_file.read_text())
        card["script"] = shlex.join(["python", f"scripts/{script}", *sys.argv[1:]])
        card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
