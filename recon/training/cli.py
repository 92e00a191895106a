"""``recon train KIND ...``: one sub-command per learned prior family; each writes safetensors plus a JSON card."""

from __future__ import annotations

import glob
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from recon.errors import UserError

train_app = typer.Typer(help="Train a learned prior and write W.safetensors plus its JSON card.",
                        no_args_is_help=True)

UNFOLDED_SPECS = ("sparse-linear", "mri-cartesian", "ct-parallel")

# Options shared by the sub-commands.
Out = Annotated[Path, typer.Option("--out", help="Weights to write, W.safetensors (card: W.json).")]
Sources = Annotated[list[str], typer.Option(
    "--data", help="Volumes/images (npy, nii, dcm or DICOM folder, FILE.h5:KEY; quoted globs), "
                   "phantom:ellipses|foam|shepp-logan, skimage:NAME. Repeatable.")]
Channels = Annotated[int, typer.Option(help="1: real images (CT); 2: complex (MRI), random smooth phase.")]
HU = Annotated[bool, typer.Option(help="The volumes are CT in Hounsfield units: map to attenuation first.")]
Resume = Annotated[bool, typer.Option(help="Continue from the checkpoint W.ckpt of an interrupted run.")]
Device = Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing --out and its card.")]
Seed = Annotated[int, typer.Option(help="Random seed (weights, patches, noise).")]
# Accelerator options of the image-prior commands (lpn, denoiser, diffusion); all off by default.
Minutes = Annotated[float | None, typer.Option(help="Wall-clock budget in minutes: the schedule of --steps then "
                                                    "advances by the clock and ends at the deadline (fewer optimiser "
                                                    "steps on a slower device; not resumable).")]
Precision = Annotated[str, typer.Option(help="fp32 | tf32 | bf16 (the loss under bfloat16 autocast).")]
ChannelsLast = Annotated[bool, typer.Option(help="Channels-last memory format (faster convolutions on GPUs).")]
Bank = Annotated[int | None, typer.Option(help="Draw this many patches once onto the device and sample the "
                                               "batches there (keeps a GPU busy; 2D only).")]
Init = Annotated[Path | None, typer.Option(help="Start from these weights (the same architecture), e.g. fine-tune "
                                                "the shipped ones (recon/weights/NAME.safetensors) on your data.")]
# Options of the DRUNet denoisers (denoiser, radar-denoiser).
LearningRate = Annotated[float, typer.Option(help="Adam learning rate (cosine decay).")]
Width = Annotated[int, typer.Option(help="Channels of the first scale (then x2, x4, x4).")]
Blocks = Annotated[int, typer.Option(help="Residual blocks per scale.")]
SigmaMax = Annotated[float, typer.Option(help="Largest noise std, in the unit of the training data (each source "
                                              "divided by its 0.99 quantile of |value| when that is > 0).")]


def expand_data(patterns: list[str]) -> list[Path]:
    """Files named by ``--data`` values: paths or glob patterns (quoted, e.g. 'meas/*.h5'), in sorted order."""
    paths = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise UserError("no file matches this pattern", path=pattern, key="--data",
                                fix="check the folder and the pattern, e.g. --data 'meas/*.h5'")
            paths.extend(Path(m) for m in matches)
        elif not Path(pattern).is_file():
            raise UserError("file not found", path=pattern, key="--data", fix="check the path (quote glob patterns)")
        else:
            paths.append(Path(pattern))
    return paths


VOLUME_SUFFIXES = (".npy", ".nii", ".nii.gz", ".tif", ".tiff", ".h5", ".hdf5", ".nx", ".nxs")


def expand_folder(folder: Path) -> list[str]:
    """A folder given to ``--data``: its volume files (sorted: fastMRI or LoDoPaB files, NIfTI, npy...), or the
    folder itself when it holds none of them (a DICOM series). Other files are named on stderr, not read."""
    import h5py

    entries = sorted(p for p in folder.iterdir() if p.is_file())
    files = [p for p in entries if p.name.lower().endswith(VOLUME_SUFFIXES) or h5py.is_hdf5(p)]
    if not files:
        return [str(folder)]
    others = [p.name for p in entries if p not in files]
    if others:
        print(f"recon train: --data {folder}: skipped {len(others)} file(s) that are not volumes "
              f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})", file=sys.stderr)
    return [str(p) for p in files]


def expand_sources(sources: list[str]) -> list[str]:
    """``--data`` values of the image-prior commands: ``phantom:``/``skimage:`` names as they are, folders (see
    :func:`expand_folder`), files and globs expanded (see :func:`expand_data`); a LoDoPaB observation file is
    dropped when its ground-truth file is listed too."""
    from recon.training.layout_images import drop_paired_measurements

    items = [path for item in sources for path in (
        [item] if item.startswith(("phantom:", "skimage:")) else expand_folder(Path(item)) if Path(item).is_dir()
        else map(str, expand_data([item])))]
    return [str(p) for p in drop_paired_measurements([Path(i) for i in items])]


def note_layouts(card: dict, items: list[str]) -> None:
    """Say in the card's data what was read from each source in a foreign layout (``layouts``: path -> line)."""
    from recon.training.layout_images import describe_source, layout_of

    layouts = {item: describe_source(item) for item in items if layout_of(item)[0]}
    if layouts:
        card["data"]["layouts"] = layouts


def _choice(value: str, choices: tuple[str, ...], key: str) -> str:
    if value not in choices:
        raise UserError(f"{value!r} is not allowed", key=key, fix=f"choose one of {', '.join(choices)}")
    return value


def _at_least(value: float, low: float, key: str) -> None:
    if value < low:
        raise UserError(f"{value} is out of range", key=key, fix=f"use a value >= {low}")


def _speed(minutes: float | None, precision: str, channels_last: bool, bank: int | None):
    """The accelerator options as a :class:`recon.training.loop.Speed`, checked."""
    from recon.training.loop import PRECISIONS, Speed

    _choice(precision, PRECISIONS, "--precision")
    for value, low, key in ((minutes, 1e-3, "--minutes"), (bank, 1, "--bank")):
        if value is not None:
            _at_least(value, low, key)
    return Speed(minutes, precision, channels_last, bank)


@train_app.command("unfolded")
def unfolded(
    algo: Annotated[str, typer.Option(help="ista (soft thresholding, l1) | iht (hard thresholding, l0).")],
    loss: Annotated[str, typer.Option(help="supervised (MSE to ground_truth) | unsupervised (the objective).")],
    data: Annotated[list[str], typer.Option(help="Measurement files or quoted glob patterns (repeatable).")],
    out: Out,
    layers: Annotated[int, typer.Option(help="Number of unfolded layers T.")] = 20,
    spec: Annotated[str | None, typer.Option(help="sparse-linear | mri-cartesian | ct-parallel (default: the "
                                                  "files').")] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps (half layer-wise, half on all layers).")] = 2000,
    lam: Annotated[float | None, typer.Option(help="Sparsity weight lam [0.1 ista, 0.05 iht, 1e-3 images].")] = None,
    batch: Annotated[int, typer.Option(help="Slices or samples per batch.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 0.02,
    learn_thresholds: Annotated[bool, typer.Option(help="Learn a per-layer factor on lam too.")] = False,
    incremental: Annotated[bool, typer.Option(help="Layer-wise training for the first half.")] = True,
    levels: Annotated[int, typer.Option(help="Haar wavelet levels for images.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (batch order, initialisation).")] = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
) -> None:
    """Train deep unfolded ISTA/IHT step sizes on measurement files; write W.safetensors and W.json."""
    _choice(algo, ("ista", "iht"), "--algo")
    _choice(loss, ("supervised", "unsupervised"), "--loss")
    if spec is not None:
        spec = _choice(spec.removesuffix("/1"), UNFOLDED_SPECS, "--spec") + "/1"
    for value, low, key in ((layers, 1, "--layers"), (steps, 1, "--steps"), (batch, 1, "--batch"),
                            (lr, 0, "--lr"), (levels, 0, "--levels"), (lam if lam is not None else 0, 0, "--lam")):
        _at_least(value, low, key)
    paths = expand_data(data)
    from recon.training.weights_files import card_path, check_weights_path  # (light: no torch yet)

    check_weights_path(out, overwrite)
    from recon.device import resolve_device  # torch and the rest only once the options are known to be good
    from recon.progress import default_progress
    from recon.training.unfolded import Schedule, train_from_files, write_weights

    model, card = train_from_files(
        paths, algo, loss, layers, Schedule(steps, lr, incremental, seed), lam=lam, spec=spec, batch_size=batch,
        learn_thresholds=learn_thresholds, wavelet_levels=levels, device=resolve_device(device),
        command=shlex.join(["recon", *sys.argv[1:]]), progress=default_progress())
    write_weights(model, out, card, overwrite=overwrite)
    init, trained = card["validation"]["init"], card["validation"]["trained"]
    scores = ", ".join(f"{key} {init[key]:.4g} -> {trained[key]:.4g}" for key in trained)
    print(f"wrote {out} and {card_path(out)}: unfolded-{algo} ({loss}), {layers} layers on {card['spec']}; "
          f"validation {scores} (plain {algo.upper()} with {layers} iterations -> trained)")


@train_app.command("lpn")
def lpn(
    data: Sources,
    out: Out,
    channels: Channels = 1,
    sigma: Annotated[float, typer.Option(help="Noise level the prox is trained for (normalised unit).")] = 0.1,
    hidden: Annotated[int, typer.Option(help="Hidden channels of the convex network.")] = 64,
    layers: Annotated[int, typer.Option(help="Hidden layers of the convex network.")] = 4,
    beta: Annotated[float, typer.Option(help="Softplus sharpness.")] = 20.0,
    steps: Annotated[int, typer.Option(help="Adam steps: half L1 warm-up, half proximal matching.")] = 4000,
    batch: Annotated[int, typer.Option(help="Patches per batch.")] = 16,
    patch: Annotated[int, typer.Option(help="Patch side in pixels.")] = 40,
    gamma_min: Annotated[float, typer.Option(help="Final proximal-matching gamma per sqrt(value).")] = 0.08,
    hu: HU = False,
    resume: Resume = False,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation, patches, noise).")] = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    minutes: Minutes = None,
    precision: Precision = "fp32",
    channels_last: ChannelsLast = False,
    bank: Bank = None,
    init: Init = None,
) -> None:
    """Train a learned proximal network by proximal matching; write W.safetensors and W.json."""
    _choice(str(channels), ("1", "2"), "--channels")
    for value, low, key in ((sigma, 1e-6, "--sigma"), (hidden, 1, "--hidden"), (layers, 1, "--layers"),
                            (beta, 1e-6, "--beta"), (steps, 2, "--steps"), (batch, 1, "--batch"), (patch, 8, "--patch"),
                            (gamma_min, 1e-6, "--gamma-min")):
        _at_least(value, low, key)
    speed = _speed(minutes, precision, channels_last, bank)
    init_weights = _init_path(init)
    items = expand_sources(data)
    from recon.training.weights_files import card_path, check_weights_path

    check_weights_path(out, overwrite)
    from recon.device import resolve_device
    from recon.models.lpn import LPNConfig
    from recon.progress import default_progress
    from recon.training.data import load_sources
    from recon.training.lpn import LPNSchedule, train_lpn, write_lpn

    volumes = load_sources(items, hu=hu, seed=seed)
    config = LPNConfig(channels=channels, hidden=hidden, layers=layers, beta=beta, sigma=sigma)
    schedule = LPNSchedule(steps=steps, batch=batch, patch=patch, gamma_min=gamma_min, seed=seed)
    checkpoint = out.with_suffix(".ckpt")
    training = train_lpn(volumes, config, schedule, device=resolve_device(device), checkpoint=checkpoint,
                         resume=resume, data={"sources": items, "hu": hu},
                         command=shlex.join(["recon", *sys.argv[1:]]), progress=default_progress(), speed=speed,
                         init=init_weights)
    note_layouts(training.card, items)
    write_lpn(training, out, overwrite=overwrite)
    checkpoint.unlink(missing_ok=True)
    scores = training.card["validation"]
    print(f"wrote {out} and {card_path(out)}: LPN ({channels} channel(s), sigma {sigma}); held-out PSNR "
          f"{scores['psnr_noisy']:.2f} dB noisy -> {scores['psnr_denoised']:.2f} dB")


@train_app.command("denoiser")
def denoiser(
    data: Sources,
    out: Out,
    dim: Annotated[int, typer.Option(help="2: a 2D denoiser of slices; 3: a 3D denoiser of patches.")] = 2,
    channels: Channels = 1,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2000,
    patch: Annotated[int, typer.Option(help="Patch side in pixels.")] = 48,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 16,
    sigma_max: SigmaMax = 0.2,
    lr: LearningRate = 1e-3,
    width: Width = 16,
    blocks: Blocks = 1,
    hu: HU = False,
    signed: Annotated[bool, typer.Option(help="Negate half the patches (to denoise real/imaginary parts of "
                                              "complex images with one channel).")] = False,
    seed: Seed = 0,
    device: Device = "auto",
    resume: Resume = False,
    overwrite: Overwrite = False,
    minutes: Minutes = None,
    precision: Precision = "fp32",
    channels_last: ChannelsLast = False,
    bank: Bank = None,
    init: Init = None,
) -> None:
    """Train a noise-level-aware DRUNet denoiser on clean data with synthetic noise; write W.safetensors and W.json."""
    _choice(str(dim), ("2", "3"), "--dim")
    _choice(str(channels), ("1", "2"), "--channels")
    _check_denoiser_options(steps, patch, batch, sigma_max, lr, width, blocks)
    speed = _speed(minutes, precision, channels_last, bank)
    init_weights = _init_path(init)
    items = expand_sources(data)
    from recon.training.weights_files import check_weights_path

    check_weights_path(out, overwrite)
    from recon.training.denoiser import DenoiserTraining

    config = _denoiser_config(dim, channels, width, blocks, sigma_max)
    training = DenoiserTraining(tuple(items), config, patch=patch, batch=batch, steps=steps, lr=lr, seed=seed, hu=hu,
                                signed=signed, speed=speed, init=init_weights)
    _train_denoiser_and_write(training, out, device, resume, overwrite)


def _init_path(init: Path | None) -> str | None:
    """``--init`` as the trainers take it (its path as a string, or None); UserError when it is not a file."""
    if init is not None and not init.is_file():
        raise UserError("file not found", path=init, key="--init", fix="give a weights file W.safetensors")
    return None if init is None else str(init)


def _denoiser_config(dim: int, channels: int, width: int, blocks: int, sigma_max: float, noise: str = "gaussian"):
    """The DRUNet of ``--width`` w: channels (w, 2w, 4w, 4w) per scale, ``--blocks`` residual blocks each."""
    from recon.models.denoisers import DenoiserConfig

    return DenoiserConfig(dim=dim, channels=channels, nc=(width, 2 * width, 4 * width, 4 * width), nb=blocks,
                          sigma_max=sigma_max, noise=noise)


def _check_denoiser_options(steps: int, patch: int, batch: int, sigma_max: float, lr: float, width: int,
                            blocks: int) -> None:
    for value, low, key in ((steps, 1, "--steps"), (patch, 16, "--patch"), (batch, 1, "--batch"),
                            (sigma_max, 1e-6, "--sigma-max"), (lr, 1e-12, "--lr"), (width, 1, "--width"),
                            (blocks, 1, "--blocks")):
        _at_least(value, low, key)


def _train_denoiser_and_write(training, out: Path, device: str, resume: bool, overwrite: bool,
                              sources: list[str] | None = None) -> None:
    """Train (checkpoint W.ckpt beside ``out``, removed at the end), write the weights and card, print a line.
    ``sources``: what the card's data sources say instead of the training's ``data`` items."""
    from recon.device import resolve_device
    from recon.progress import default_progress
    from recon.training.denoiser import train_denoiser, write_denoiser
    from recon.training.weights_files import card_path

    checkpoint = out.with_suffix(".ckpt")
    model, card = train_denoiser(training, device=resolve_device(device), checkpoint=checkpoint, resume=resume,
                                 command=shlex.join(["recon", *sys.argv[1:]]), progress=default_progress())
    if sources is not None:
        card["data"]["sources"] = sources
    note_layouts(card, list(training.data))
    write_denoiser(model, training.config, out, card, overwrite=overwrite)
    checkpoint.unlink(missing_ok=True)
    scores = card["validation"]
    print(f"wrote {out} and {card_path(out)}: {card['summary']}, {card.get('optimiser_steps', training.steps)} steps; "
          f"validation PSNR {scores['psnr_noisy']:.2f} dB noisy -> {scores['psnr_denoised']:.2f} dB denoised")


@train_app.command("radar-denoiser")
def radar_denoiser(
    out: Out,
    scenes: Annotated[int, typer.Option(help="Random scenes of recon.scenes to draw (kind 'random').")] = 32,
    shape: Annotated[str, typer.Option(help="Scene grid nz,ny,nx (z = range).")] = "48,64,64",
    scene_seed: Annotated[int, typer.Option(help="Seed of the scene generator (keep evaluation scenes on other "
                                                 "seeds).")] = 0,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 5000,
    patch: Annotated[int, typer.Option(help="3D patch side in voxels.")] = 32,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 8,
    sigma_max: SigmaMax = 0.2,
    lr: LearningRate = 1e-3,
    width: Width = 16,
    blocks: Blocks = 1,
    noise: Annotated[str, typer.Option(help="gaussian: noise added to the magnitudes; rician: the magnitude of the "
                                            "complex scene plus complex noise (what mimo-pnp feeds it).")
                     ] = "gaussian",
    init: Annotated[Path | None, typer.Option(help="Start from these weights (same --width/--blocks), e.g. "
                                                   "fine-tune the shipped drunet-radar.")] = None,
    seed: Seed = 0,
    device: Device = "auto",
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """Train the 3D radar magnitude denoiser (mimo-pnp's prior) on random synthetic scenes; write W.safetensors
    and W.json.

    The recipe of the shipped drunet-radar: ``recon.scenes.magnitude_stack(scenes, shape, scene_seed)`` (the
    magnitudes of random scenes stacked along z, float16; what scripts/training_data.py packs), then ``recon train
    denoiser --dim 3`` on that stack (Gaussian noise on the magnitude, no normalisation: the stack's 0.99
    quantile is 0, so the unit stays the scenes' [0, 1]). ``--noise rician`` trains on |m + sigma (n1 + j n2)|
    instead (mimo-pnp then gives it the magnitude as it is, no bias taken off); ``--init`` fine-tunes given weights.
    With the defaults this is the first shipped weights' command, ``recon train denoiser --data radar-scenes.npy
    --dim 3 --width 16 --blocks 1 --patch 32 --batch 8 --steps 5000 --sigma-max 0.2 --seed 0``.
    """
    sizes = shape.split(",")
    if len(sizes) != 3 or not all(n.strip().isdigit() for n in sizes) or min(int(n) for n in sizes) < patch:
        raise UserError(f"shape {shape!r} is not three integers >= the patch {patch}", key="--shape",
                        fix="write nz,ny,nx, e.g. 48,64,64")
    _at_least(scenes, 1, "--scenes")
    _check_denoiser_options(steps, patch, batch, sigma_max, lr, width, blocks)
    from recon.training.data import NOISES

    _choice(noise, NOISES, "--noise")
    init_weights = _init_path(init)
    from recon.training.weights_files import check_weights_path

    check_weights_path(out, overwrite)
    import tempfile

    import numpy as np

    from recon.scenes import magnitude_stack
    from recon.training.denoiser import DenoiserTraining

    grid = tuple(int(n) for n in sizes)
    config = _denoiser_config(3, 1, width, blocks, sigma_max, noise)
    with tempfile.TemporaryDirectory() as folder:  # the training reads its sources from files
        pack = Path(folder) / "radar-scenes.npy"
        np.save(pack, magnitude_stack(scenes, grid, scene_seed))
        training = DenoiserTraining((str(pack),), config, patch=patch, batch=batch, steps=steps, lr=lr, seed=seed,
                                    init=init_weights)
        _train_denoiser_and_write(training, out, device, resume, overwrite, sources=[
            f"recon.scenes.magnitude_stack({scenes}, {grid}, seed={scene_seed}): the magnitudes of random scenes "
            f"drawn from numpy.random.default_rng({scene_seed}), stacked along z, float16"])


@train_app.command("diffusion")
def diffusion(
    data: Sources,
    out: Out,
    size: Annotated[int, typer.Option(help="Image side: every slice is resized to size x size.")] = 64,
    patch: Annotated[int | None, typer.Option(help="Train on random patch x patch crops of the resized slices "
                                                   "(default: whole slices).")] = None,
    channels: Channels = 1,
    width: Annotated[int, typer.Option(help="UNet channels of the first scale (a multiple of 32).")] = 32,
    mult: Annotated[str, typer.Option(help="Width multipliers per scale, comma separated.")] = "1,2,2,2",
    blocks: Blocks = 1,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 4000,
    batch: Annotated[int, typer.Option(help="Slices per step.")] = 8,
    lr: LearningRate = 2e-4,
    ema: Annotated[float, typer.Option(help="Decay of the exponential moving average of the weights (written).")
                   ] = 0.999,
    init: Init = None,
    hu: HU = False,
    seed: Seed = 0,
    device: Device = "auto",
    resume: Resume = False,
    overwrite: Overwrite = False,
    minutes: Minutes = None,
    precision: Precision = "fp32",
    channels_last: ChannelsLast = False,
    bank: Bank = None,
) -> None:
    """Train a VP diffusion model (epsilon UNet) on 2D slices for dds and diffusion-mbir; write W.safetensors
    and W.json (the EMA weights). A checkpoint W.ckpt is kept every 100 steps for --resume."""
    _choice(str(channels), ("1", "2"), "--channels")
    factors = mult.split(",")
    if not all(f.strip().isdigit() and int(f) > 0 for f in factors):
        raise UserError(f"--mult {mult!r} is not a list of positive integers", key="--mult", fix="write e.g. 1,2,2,2")
    if width % 32:
        raise UserError(f"--width {width} is not a multiple of 32", key="--width", fix="use 32, 64, 96, ...")
    if patch is not None and not 8 <= patch <= size:
        raise UserError(f"--patch {patch} is not between 8 and --size {size}", key="--patch",
                        fix="use a crop side no larger than --size, or leave --patch out")
    for value, low, key in ((size, 8, "--size"), (steps, 1, "--steps"), (batch, 1, "--batch"), (lr, 1e-12, "--lr"),
                            (blocks, 1, "--blocks"), (ema, 0.0, "--ema")):
        _at_least(value, low, key)
    if ema >= 1:
        raise UserError(f"--ema {ema} must be below 1", key="--ema", fix="use e.g. 0.999")
    speed = _speed(minutes, precision, channels_last, bank)
    init_weights = _init_path(init)
    items = expand_sources(data)
    from recon.training.weights_files import card_path, check_weights_path

    check_weights_path(out, overwrite)
    from recon.device import resolve_device
    from recon.models.diffusion import DiffusionConfig
    from recon.progress import default_progress
    from recon.training.diffusion import DiffusionTraining, train_diffusion, write_diffusion

    config = DiffusionConfig(channels=channels, width=width, mult=tuple(int(f) for f in factors), blocks=blocks)
    training = DiffusionTraining(tuple(items), config, size=size, patch=patch, batch=batch, steps=steps, lr=lr,
                                 ema=ema, seed=seed, hu=hu, init=init_weights,
                                 speed=speed)
    checkpoint = out.with_suffix(".ckpt")
    model, card = train_diffusion(training, device=resolve_device(device), checkpoint=checkpoint, resume=resume,
                                  command=shlex.join(["recon", *sys.argv[1:]]), progress=default_progress())
    note_layouts(card, items)
    write_diffusion(model, config, out, card, overwrite=overwrite)
    checkpoint.unlink(missing_ok=True)
    scores = card["validation"]
    print(f"wrote {out} and {card_path(out)}: {card['summary']}, {card.get('optimiser_steps', steps)} steps; "
          f"held-out eps loss {scores['loss']:.4f}, Tweedie x0 PSNR {scores['psnr_x0']:.2f} dB (mean over t in "
          f"{', '.join(map(str, scores['time_steps']))})")
