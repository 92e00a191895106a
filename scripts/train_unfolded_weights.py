"""Train the deep unfolded weights shipped in recon/weights/; each card records this script's command.

    .venv/bin/python scripts/train_unfolded_weights.py [--only NAME ...] [--threads 1]

- unfolded-ista-sparse-linear, unfolded-iht-sparse-linear: the study's setup (m=75, n=150, 12 nonzeros
  N(0, 1), Gaussian A, 10 dB SNR; see scripts/unfolded_study.py), T = 20, synthetic batches of 100 signals
  with a fresh A per batch (as in the paper), so the weights serve any file of that setup.
- unfolded-ista-mri-cartesian: Haar-wavelet DU-ISTA trained unsupervised on measurement files alone, end
  to end through the CLI (the commands are in the card): 4 coils, 4x Poisson-disc mask, 1% noise, coil maps
  stored; the training volume is 12 scikit-image pictures at 64 x 64 (camera, moon, coins, ...) measured
  4 times with different masks and noise; the Shepp-Logan phantom used for evaluation is never seen.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from recon.models.unfolded import UnfoldedConfig, UnfoldedThresholding
from recon.progress import log_progress
from recon.training.unfolded import Schedule, make_card, synthetic_sparse_sampler, timed_train, write_weights
from recon.training.weights_files import card_path
from recon.weights import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parent.parent
RECON = str(Path(sys.executable).with_name("recon"))
SPARSE = {"m": 75, "n": 150, "k": 12, "snr_db": 10.0}
SPARSE_WEIGHTS = {  # name: (algo, loss, lam)
    "unfolded-ista-sparse-linear": ("ista", "supervised", 0.1),
    "unfolded-iht-sparse-linear": ("iht", "unsupervised", 0.05),
}
LAYERS, STEPS, LR = 20, 3000, 0.02
MRI_DIR = Path("bench_results/unfolded_mri")  # relative to ROOT, where the commands run
MRI_PICTURES = ("camera", "moon", "brick", "coins", "clock", "text", "page", "grass", "gravel", "cell",
                "checkerboard", "microaneurysms")
MRI_SIMULATE = ("mri-cartesian", "--coils", "4", "--acceleration", "4", "--mask", "poisson2d", "--noise-std", "0.01",
                "--with-coil-maps")
MRI_TRAIN = ("--algo", "ista", "--loss", "unsupervised", "--spec", "mri-cartesian", "--layers", "20",
             "--learn-thresholds", "--lam", "1e-3", "--steps", "2000", "--lr", "0.05", "--batch", "12")


def this_command() -> str:
    return shlex.join([".venv/bin/python", "scripts/train_unfolded_weights.py", *sys.argv[1:]])


def train_sparse(name: str, algo: str, loss: str, lam: float) -> None:
    """Train on synthetic batches (fresh A each), validate on 10 held-out batches, write weights + card."""
    model = UnfoldedThresholding(UnfoldedConfig(algo, LAYERS, lam, "sparse-linear/1"))
    sample = synthetic_sparse_sampler(*SPARSE.values(), batch_size=100, seed=1, device=torch.device("cpu"))
    held_out = synthetic_sparse_sampler(*SPARSE.values(), batch_size=100, seed=123, device=torch.device("cpu"))
    validation = [held_out() for _ in range(10)]
    schedule = Schedule(STEPS, LR, incremental=True, seed=0)
    losses, scores, elapsed = timed_train(model, sample, loss, schedule, log_progress, validation)
    data = {"synthetic": {**SPARSE, "noise": "Gaussian at snr_db", "A": "N(0, 1/m) entries, fresh per batch",
                          "signals": "k nonzeros N(0, 1) (recon.simulate.simulate_sparse_linear)"},
            "batch_size": 100, "training_seed": 1, "validation": "10 held-out batches of 100 signals (seed 123)"}
    card = make_card(model, loss, schedule, losses, data, scores, this_command(), torch.device("cpu"), elapsed)
    write_weights(model, WEIGHTS_DIR / f"{name}.safetensors", card, overwrite=True)
    print(f"{name}: validation {scores}", flush=True)


def recon(*args: str, threads: int) -> str:
    """Run the ``recon`` console script in the repository root; returns its command line."""
    subprocess.run([RECON, *args], check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                   stdout=subprocess.DEVNULL)
    return shlex.join(["recon", *args])


def train_mri(name: str, threads: int) -> None:
    """Simulate the training files with `recon simulate`, train with `recon train unfolded` (no ground truth)."""
    from skimage import data
    from skimage.transform import resize

    (ROOT / MRI_DIR).mkdir(parents=True, exist_ok=True)
    pictures = []
    for picture in MRI_PICTURES:
        image = getattr(data, picture)().astype(np.float32)
        pictures.append(resize(image, (64, 64), anti_aliasing=True) / image.max())
    volume = MRI_DIR / "train_volume.npy"
    np.save(ROOT / volume, np.stack(pictures).astype(np.float32))
    recipe = [recon("simulate", *MRI_SIMULATE, "--volume", str(volume), "--seed", str(seed),
                    "--out", str(MRI_DIR / f"train{seed}.h5"), "--overwrite", threads=threads) for seed in range(4)]
    out = WEIGHTS_DIR.relative_to(ROOT) / f"{name}.safetensors"
    recipe.append(recon("train", "unfolded", *MRI_TRAIN, "--data", str(MRI_DIR / "train*.h5"), "--out", str(out),
                        "--overwrite", threads=threads))
    card_file = ROOT / card_path(out)
    card = json.loads(card_file.read_text())
    card.update(script=this_command(), recipe=recipe,
                training_volume=f"scikit-image pictures {', '.join(MRI_PICTURES)}, resized to 64 x 64, scaled to "
                                "[0, 1]; ground truth present in the files but not read by the unsupervised loss")
    card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [*SPARSE_WEIGHTS, "unfolded-ista-mri-cartesian"]
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.only:
        if name in SPARSE_WEIGHTS:
            train_sparse(name, *SPARSE_WEIGHTS[name])
        else:
            train_mri(name, args.threads)


if __name__ == "__main__":
    main()
