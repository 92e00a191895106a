"""The ``recon`` command line (typer). Errors a user can fix exit 2 with one line; internal failures exit 1."""

from __future__ import annotations

import functools
import math
import shlex
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import yaml

from recon.catalog import method_lines, methods_hint
from recon.errors import ComputationFailed, ReconWarning, UserError
from recon.specs import SpecKind
from recon.streaming import default_budget, parse_halo, parse_memory

app = typer.Typer(
    help="Reconstruct images and volumes from HDF5 measurements: CT, MRI, dynamic CT/MRI, near-field MIMO radar "
         "and sparse signals, with classical, learned and diffusion priors. Start with `recon demo`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"max_content_width": 110},
    rich_markup_mode=None,  # help texts are plain: rich markup would swallow bracketed defaults like [60]
)

PHANTOMS = ("shepp-logan-3d",)


def _command_line() -> str:
    return shlex.join(["recon", *sys.argv[1:]])


def _print_version(value: bool) -> None:
    if value:
        from recon import __version__

        print(f"recon {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print recon's version and exit.")] = False,
) -> None:
    """Global options (``--debug`` is read by :func:`main`)."""


@app.command()
def methods(
    name: Annotated[str | None, typer.Argument(help="A method: show its parameters, priors and weights.")] = None,
    spec: Annotated[str | None, typer.Option(help="Only the methods that accept this spec, e.g. ct-parallel.")] = None,
) -> None:
    """List the methods (name, family, specs), or show one method's parameters, priors and shipped weights."""
    from recon.catalog import describe_method, method_lines

    print(describe_method(name) if name is not None else method_lines(spec))


READ_HELP = ("Reader option key=value for files in a foreign layout (repeatable), e.g. center=auto, rings=sorting, "
             "acceleration=4, coils=8.")


@app.command()
def info(file: Annotated[Path, typer.Argument(help="An HDF5 file in a recon spec or a layout recon reads.")],
         read: Annotated[list[str] | None, typer.Option("--read", help=READ_HELP)] = None) -> None:
    """Validate FILE against its spec, or name the layout that recognises it and how it maps onto a spec; print
    its datasets, attributes and every problem found."""
    from recon.io.layouts import inspect_file, parse_read_options

    text, problems = inspect_file(file, parse_read_options(read))
    print(text)
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise typer.Exit(2)


def _load_input_volume(volume: Path | None, key: str | None, phantom: str | None, size: int | None,
                       dynamic: bool = False, frames: int | None = None, seed: int = 0,
                       fits: Callable[[int], None] = lambda voxels: None):
    """``(volume, voxel size)``: the volume (z, y, x) to measure, or with ``dynamic`` the sequence (t, y, x), from a
    phantom (no voxel size) or a file (the voxel size it states, resampled with ``size``). Warns when the file
    holds a sinogram rather than an image. ``fits(voxels)`` is called before a phantom is made or a volume
    resampled, to refuse what cannot fit."""
    import numpy as np

    from recon.errors import warn
    from recon.io.ct_geometry import sinogram_like
    from recon.io.volumes import VoxelSize, load_volume_and_spacing

    if (volume is None) == (phantom is None):
        example = "walnut --frames 64, or --volume frames.npy" if dynamic else "shepp-logan-3d, or --volume head.nii"
        raise UserError("give exactly one of --volume and --phantom", key="--volume", fix=f"e.g. --phantom {example}")
    if phantom is not None and dynamic:
        from recon.dynamic_phantoms import make_dynamic_phantom

        frames, size = _given(frames, 64), _given(size, 128)
        fits(frames * size * size)
        return make_dynamic_phantom(phantom, frames, size, seed), None
    if phantom is not None:
        from recon.phantoms import shepp_logan_3d

        if phantom not in PHANTOMS:
            raise UserError(f"unknown phantom {phantom!r}", key="--phantom", fix=f"choose {', '.join(PHANTOMS)}")
        size = _given(size, 64)
        fits(size**3)
        return shepp_logan_3d(size), None
    if frames is not None:
        raise UserError("--frames sets a phantom's length; a volume's frames are its first axis", key="--frames",
                        fix="leave out --frames with --volume")
    data, spacing = load_volume_and_spacing(str(volume), key=key)
    sinogram = sinogram_like(data)
    if sinogram:
        warn(f"{sinogram}: this is a sinogram, not an image to measure", path=volume, key="--volume",
             fix="reconstruct it instead: `recon import sinogram FILE --angles N|FILE --angle-unit deg|rad --out S.h5`")
    fits(data.size if size is None else data.size // math.prod(data.shape[-2:]) * size * size)
    if size is not None and data.shape[-2:] != (size, size):
        from skimage.transform import resize

        if spacing is not None:  # the same field of view in size x size pixels
            factors = (1,) * (data.ndim - 2) + (data.shape[-2] / size, data.shape[-1] / size)
            spacing = VoxelSize(tuple(d * f for d, f in zip(spacing.sizes, factors, strict=True)), spacing.unit)
        data = resize(data, (*data.shape[:-2], size, size), order=1, anti_aliasing=True).astype(np.float32)
    return data, spacing


def _given(value, default):
    """``value``, or ``default`` when the option was not given (unlike ``or``, keeps 0 so it can be refused)."""
    return default if value is None else value


_SIMULATE_MINIMUMS = {  # option: (smallest allowed value, whether that value itself is allowed)
    "size": (2, True), "frames": (1, True), "views": (1, True), "views_per_frame": (1, True), "n_det": (2, True),
    "coils": (1, True), "acceleration": (1.0, True), "acs": (0, True), "noise_std": (0.0, True), "m": (1, True),
    "n": (1, True), "k": (1, True), "samples": (1, True), "frequencies": (1, True), "fmin": (0.0, False),
    "fmax": (0.0, False), "angle_range": (0.0, False), "snr_db": (-math.inf, False), "photons": (0.0, False),
}


def _check_simulate_numbers(values: dict[str, Any]) -> None:
    """UserError for a numeric option of ``recon simulate`` that is not finite or below its minimum (a 0 is
    refused, never replaced by the default)."""
    for name, (low, inclusive) in _SIMULATE_MINIMUMS.items():
        value = values.get(name)
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        bound = f">= {low}" if inclusive else f"> {low}"
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise UserError(f"{value!r} is not allowed", key=option,
                            fix=f"give a finite {option} {bound}" if math.isfinite(low) else f"give a finite {option}")


def _simulators() -> dict[str, SpecKind]:
    """The specs ``recon simulate`` makes, by name (``ct-parallel``), in registry order."""
    from recon.specs import all_kinds

    return {kind.name: kind for kind in all_kinds() if kind.simulate is not None}


def _check_simulation_fits(kind: SpecKind, values: dict[str, Any], elements: int) -> None:
    """UserError when simulating ``kind`` over ``elements`` image voxels (radar: voxels plus measurements; sparse:
    matrix plus signals) cannot fit in memory: a lower bound counting the image, its ground-truth copy and the
    measurements (sinograms of diagonal-wide detectors, complex k-space per coil, complex128 radar scenes), from the
    spec's :attr:`~recon.specs.Simulator.bytes_per_element`."""
    from recon.memory import check_fits

    side = max(1, round(elements ** (1 / 3)))
    option = "--size" if kind.simulate.measures_volume else "--grid" if "grid" in kind.simulate.options else "--m"
    check_fits(int(elements * kind.simulate.bytes_per_element(values, side)), f"simulating {kind.name} ({elements} "
               "values)", key=option, fix=f"choose smaller sizes ({option} and the like)")


@app.command()
def simulate(
    spec: Annotated[str, typer.Argument(help="ct-parallel | mri-cartesian | ct-dynamic | mri-dynamic | "
                                             "sparse-linear | mimo-nearfield (or a plugin's spec)")],
    out: Annotated[Path, typer.Option("--out", help="Measurement file to write.")],
    volume: Annotated[Path | None, typer.Option(help="Volume to measure: .npy, .nii(.gz), .dcm/folder, .h5; for "
                                                     "dynamic specs a (t, y, x) sequence.")] = None,
    key: Annotated[str | None, typer.Option(help="Dataset inside an .h5 volume.")] = None,
    phantom: Annotated[str | None, typer.Option(help="Use a phantom instead: shepp-logan-3d; for dynamic specs "
                                                     "walnut | ellipses | cardiac.")] = None,
    size: Annotated[int | None, typer.Option(help="Phantom size [64; 128 dynamic], or in-plane size to resample "
                                                  "the volume to.")] = None,
    frames: Annotated[int | None, typer.Option(help="Dynamic: number of time frames of the phantom [64].")] = None,
    views: Annotated[int | None, typer.Option(help="CT: number of projection angles [60].")] = None,
    views_per_frame: Annotated[int | None, typer.Option(help="Dynamic CT: views per time frame [1].")] = None,
    order: Annotated[str | None, typer.Option(help="Dynamic CT: view order bit-reversal | golden-angle | linear "
                                                   "[bit-reversal].")] = None,
    angle_range: Annotated[float | None, typer.Option(help="CT: angular range in radians [pi].")] = None,
    pi_symmetry: Annotated[bool | None, typer.Option("--pi-symmetry", help="Dynamic CT: fold the angles into "
                                                                           "[0, pi) (mirror views).")] = None,
    n_det: Annotated[int | None, typer.Option(help="CT: detector bins [image diagonal].")] = None,
    coils: Annotated[int | None, typer.Option(help="MRI: number of coils [8].")] = None,
    acceleration: Annotated[float | None, typer.Option(help="MRI: undersampling factor [4].")] = None,
    mask: Annotated[str | None, typer.Option(help="MRI: uniform1d | gaussian1d | poisson2d | random2d "
                                                  "[uniform1d]; dynamic: a new mask per frame.")] = None,
    acs: Annotated[int | None, typer.Option(help="MRI: calibration lines / square size [auto].")] = None,
    with_coil_maps: Annotated[bool | None, typer.Option("--with-coil-maps", help="MRI: store true maps.")] = None,
    noise_std: Annotated[float | None, typer.Option(help="Noise std relative to the measurements' RMS; for "
                                                         "ct-dynamic relative to the sinogram's maximum (0.005 = "
                                                         "the paper's 0.5 %) [0].")] = None,
    photons: Annotated[float | None, typer.Option(help="CT: low-dose Poisson noise, I0 photons per detector bin "
                                                       "(the volume in attenuation per pixel); not with --noise-std.")
                       ] = None,
    m: Annotated[int | None, typer.Option("--m", help="Sparse: measurements per signal [75].")] = None,
    n: Annotated[int | None, typer.Option("--n", help="Sparse: signal length [150].")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Sparse: nonzeros per signal [12].")] = None,
    snr_db: Annotated[float | None, typer.Option(help="Sparse, radar: signal-to-noise ratio in dB [10, 30].")] = None,
    samples: Annotated[int | None, typer.Option(help="Sparse: number of signals [100].")] = None,
    array: Annotated[str | None, typer.Option(help="Radar: diagonal-TxR, TX transmitters and R receivers on the "
                                                   "diagonals of a 0.3 m aperture [diagonal-12x13].")] = None,
    array_file: Annotated[Path | None, typer.Option(help="Radar: .h5 with tx_positions, rx_positions (n, 3).")] = None,
    frequencies: Annotated[int | None, typer.Option(help="Radar: number of frequencies [20].")] = None,
    fmin: Annotated[float | None, typer.Option(help="Radar: lowest frequency in Hz [4e9].")] = None,
    fmax: Annotated[float | None, typer.Option(help="Radar: highest frequency in Hz [16e9].")] = None,
    scene: Annotated[str | None, typer.Option(help="Radar: letters | points | shapes | random [letters].")] = None,
    grid: Annotated[str | None, typer.Option(help="Radar: grid points nx,ny,nz over x, y in [-0.15, 0.15] m and "
                                                  "z in [0.35, 0.65] m [25,25,49].")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (noise, masks, signals, dynamic phantoms).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Make a measurement file (with ground truth) from a volume or a phantom."""
    import numpy as np

    from recon.io.measurement import write_measurement
    from recon.io.reconstruction import check_output_path
    from recon.params import check_seed

    simulators = _simulators()
    known = set().union(*(kind.simulate.options for kind in simulators.values()))
    options = {name: value for name, value in locals().items() if name in known}
    given = {name for name, value in options.items() if value is not None}
    spec = spec.removesuffix("/1")
    if spec not in simulators:
        raise UserError(f"cannot simulate {spec!r}", key="SPEC", fix=f"choose {', '.join(simulators)}")
    kind = simulators[spec]
    stray = sorted(given - kind.simulate.options)
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in sorted(kind.simulate.options))
        option = "--" + stray[0].replace("_", "-")
        raise UserError(f"{option} does not apply to {spec}", key=option, fix=f"{spec} takes {flags}")
    numbers = {name: value for name, value in options.items() if name in _SIMULATE_MINIMUMS}
    _check_simulate_numbers(numbers)
    check_seed(seed)
    reads = [path for path in (volume, array_file) if path is not None]
    if volume is not None and ":" in str(volume):  # FILE.h5:KEY
        reads.append(Path(str(volume).rpartition(":")[0]))
    check_output_path(out, overwrite=overwrite, protect=reads)
    rng = np.random.default_rng(seed)

    def fits(elements: int) -> None:
        _check_simulation_fits(kind, numbers, elements)

    if photons is not None and noise_std is not None:
        raise UserError("--photons and --noise-std both set the noise", key="--photons",
                        fix="give one: --photons for Poisson counts, --noise-std for Gaussian noise")
    data = spacing = None
    if kind.simulate.measures_volume:  # read and checked before torch
        data, spacing = _load_input_volume(volume, key, phantom, size, dynamic=kind.dynamic, frames=frames, seed=seed,
                                           fits=fits)
    datasets, attrs = kind.simulate.run(options, data, spacing, rng, fits)
    attrs["command"] = _command_line()
    with _complete_once_written(out):
        write_measurement(out, kind.id, datasets, attrs, overwrite=overwrite, protect=reads)
        shapes = ", ".join(f"{name} {'x'.join(map(str, a.shape))}" for name, a in datasets.items())
        print(f"wrote {out} ({kind.id}: {shapes})")


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError("config file not found", path=path, fix="check the --config path") from None
    except IsADirectoryError:
        raise UserError("is a folder, not a config file", path=path, fix="give the YAML file itself") from None
    except UnicodeDecodeError:
        raise UserError("is not a text file", path=path, fix="give a YAML file (UTF-8 text)") from None
    except OSError as error:
        raise UserError(f"cannot be read ({error.strerror})", path=path, fix="check the --config path") from None
    except yaml.YAMLError as error:
        raise UserError(f"not valid YAML ({error.__class__.__name__})", path=path, fix="check its syntax") from None
    from recon.params import SEED_LIMIT

    allowed = {"method", "prior", "params", "device", "seed"}
    if not isinstance(config, dict) or set(config) - allowed or not isinstance(config.get("params", {}), dict):
        raise UserError("expected a mapping with keys among " + ", ".join(sorted(allowed)), path=path,
                        fix="write e.g. `method: tv` and `params: {lam: 0.01, iterations: 200}`")
    if not isinstance(config.get("seed", 0), int) or isinstance(config.get("seed"), bool):
        raise UserError(f"{config['seed']!r} is not an integer", path=path, key="seed", fix="write e.g. `seed: 7`")
    if not 0 <= config.get("seed", 0) < SEED_LIMIT:
        raise UserError(f"{config['seed']} is not in [0, 2**63)", path=path, key="seed", fix="write e.g. `seed: 7`")
    for key in ("method", "prior", "device"):
        if not isinstance(config.get(key, ""), str):
            raise UserError(f"{config[key]!r} is not a name", path=path, key=key, fix=f"write e.g. `{key}: NAME`")
    return config


@contextmanager
def _complete_once_written(path: Path) -> Iterator[None]:
    """An interrupt (Ctrl-C, SIGTERM) that arrives after ``path`` was written does not fail the command: its work
    is done and complete (exit 0 with a note), rather than exit 130 beside a finished output."""
    from recon.io.atomic import was_written

    try:
        yield
    except KeyboardInterrupt:
        if not was_written(path):
            raise
        print(f"interrupted after {path} was written; the output is complete", file=sys.stderr)


def _file_spec(file: Path, read: dict[str, str]) -> str:
    """The spec of a measurement file, found as :func:`recon.io.layouts.open_measurement` finds it (a recon file is
    opened: its structure and ``--read`` checked; a foreign layout's spec is its layout's, as opening its reader can
    be costly, e.g. a centre-of-rotation search); UserError naming the problem otherwise."""
    import h5py

    from recon.io.layouts import LAYOUTS, detect_layout, open_measurement

    layout = detect_layout(file) if file.is_file() and h5py.is_hdf5(file) else None
    if layout in LAYOUTS:
        return LAYOUTS[layout].SPEC
    with open_measurement(file, **read) as measurement:
        return measurement.spec.id


def _check_method(file: Path, read: dict[str, str], method: str | None, params: dict[str, Any],
                  prior: str | None) -> None:
    """A missing or unknown --method, one that does not take FILE's spec, or a bad parameter or prior fails here
    (naming the methods for that spec) before the pipeline imports torch."""
    from recon.methods import all_methods

    spec = _file_spec(file, read)
    known = {m.name: m for m in all_methods()}
    if method in known:
        known[method].check_spec(spec, path=str(file))
        known[method].parse_params(params, prior=prior, spec=spec)
        return
    problem = "no method given" if method is None else f"unknown method {method!r}"
    raise UserError(problem, key="--method", fix=methods_hint(spec))


@app.command()
def reconstruct(
    file: Annotated[Path, typer.Argument(help="Measurement file (HDF5: a recon spec, LoDoPaB, DXchange, NXtomo...).")],
    method: Annotated[str | None, typer.Option("--method", "-m", help="Method name; '?' lists those for FILE "
                                                                      "(see `recon methods`).")] = None,
    prior: Annotated[str | None, typer.Option(help="Prior for methods that take one.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Method parameter key=value (repeatable).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with method, prior, params, device, seed.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file [FILE.METHOD.h5].")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N [auto].")] = None,
    slices: Annotated[str | None, typer.Option(help="Slice range a:b of a volume (Python-style).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [0].")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    read: Annotated[list[str] | None, typer.Option("--read", help=READ_HELP)] = None,
    memory: Annotated[str | None, typer.Option(help="Memory budget (e.g. 8G): a volume whose estimate exceeds it is "
                                                    "reconstructed in slabs of slices "
                                                    "[half the available memory].")] = None,
    halo: Annotated[str | None, typer.Option(help="Slices each slab of a z-coupled method (3D tv, tri-planar "
                                                  "pnp-admm, dds) is extended by on both sides; only its own "
                                                  "slices are kept [the method's, as `recon methods NAME` "
                                                  "says].")] = None,
) -> None:
    """Reconstruct FILE with a method and write a reconstruction/1 file."""
    from recon.io.layouts import parse_read_options
    from recon.params import parse_assignments

    settings = _read_config(config)
    method = method or settings.get("method")
    read_options = parse_read_options(read)
    if method == "?":
        print(method_lines(_file_spec(file, read_options)))
        return
    params = {**settings.get("params", {}), **parse_assignments(set_ or [])}
    _check_method(file, read_options, method, params, prior or settings.get("prior"))
    budget = parse_memory(memory) if memory is not None else default_budget()
    overlap = parse_halo(halo) if halo is not None else None

    from recon.pipeline import Request, default_output  # torch and deepinv: only once the request is checked
    from recon.progress import default_progress
    from recon.streaming import reconstruct as run

    output = out or default_output(file, method)
    request = Request(input=file, method=method, output=output, params=params, read=read_options,
                      prior=prior or settings.get("prior"),
                      device=device or settings.get("device", "auto"), slices=slices,
                      seed=seed if seed is not None else settings.get("seed", 0), overwrite=overwrite,
                      command=_command_line(), protect=(config,) if config else ())
    with _complete_once_written(output):
        print(run(request, budget, progress=default_progress(), halo=overlap).line())


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path("demo_out"),
    cases: Annotated[str | None, typer.Option(help="Comma-separated cases to run: ct, mri, radar, dynamic "
                                                   "(default: all).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the demo's earlier outputs.")] = False,
) -> None:
    """Simulate CT, MRI, radar and dynamic MRI cases from real data and phantoms, reconstruct each with a
    classical and a learned method, print a PSNR/SSIM table and write a PNG montage (about 2 minutes)."""
    from recon.demo import run_demo

    run_demo(out, cases=[c.strip() for c in cases.split(",")] if cases else None, overwrite=overwrite)


@app.command()
def batch(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, quoted globs, or text files listing them.")],
    method: Annotated[str, typer.Option("--method", help="Method name (see `recon methods`).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs and summary.json/csv.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Method parameter key=value (repeatable).")] = None,
    prior: Annotated[str | None, typer.Option(help="Prior for methods that take one.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    workers: Annotated[int | None, typer.Option(help="Local worker processes (default: one per core).")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads per worker (default: cores / workers; "
                                                     "torch's default on a remote scheduler).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:port), or local:N for a LocalCluster of N workers.")] = None,
    slab: Annotated[int | None, typer.Option(help="Split volumes into slabs of N slices (slice-separable "
                                                  "methods); slabs are merged into one file per volume.")] = None,
    read: Annotated[list[str] | None, typer.Option(
        "--read", help="Reader option key=value for files in a foreign layout, given to each file whose layout "
                       "takes it (e.g. acceleration=4 for fully sampled fastMRI files; see recon info FILE).")] = None,
    resume: Annotated[bool, typer.Option(help="Skip units whose output exists and validates.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Redo units whose output exists.")] = False,
    retries: Annotated[int, typer.Option(help="Times a unit is resubmitted after its worker died.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed of every unit.")] = 0,
) -> None:
    """Reconstruct many files (or slabs of big volumes) on a process pool or a Dask cluster.

    Exit code 0 when every unit succeeded (or was skipped by --resume), 1 when some failed, 2 for bad usage.
    """
    from recon.batch.runner import BatchRequest, run_batch
    from recon.io.layouts import parse_read_options
    from recon.params import parse_assignments

    request = BatchRequest(inputs=inputs, method=method, out_dir=out_dir, params=parse_assignments(set_ or []),
                           prior=prior, device=device, workers=workers, threads=threads, scheduler=scheduler, slab=slab,
                           read=parse_read_options(read), resume=resume, overwrite=overwrite, seed=seed,
                           retries=retries, command=_command_line())
    records = run_batch(request)
    failed = [r for r in records if r.status not in ("ok", "skipped")]
    print(f"{len(records) - len(failed)} of {len(records)} unit(s) done, {len(failed)} failed or not run; "
          f"summary in {out_dir / 'summary.json'}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


@app.command()
def view(
    files: Annotated[list[Path], typer.Argument(help="recon HDF5 files (measurements or reconstructions).")],
    three_d: Annotated[bool, typer.Option("--3d", help="Start in 3D rendering.")] = False,
    screenshot: Annotated[Path | None, typer.Option(help="Save the window as this PNG and exit.")] = None,
) -> None:
    """Open napari with FILES as layers and recon's Reconstruct and Compare widgets docked."""
    import os

    from recon.io.layouts import open_measurement

    for path in files:  # recon files are validated, foreign layouts recognised, before a window opens
        open_measurement(path).close()
    if screenshot is not None and screenshot.suffix.lower() != ".png":
        raise UserError(f"{screenshot} is not a .png path", key="--screenshot", fix="give a path ending in .png")
    try:
        import napari  # noqa: F401

        from recon_napari.view import open_viewer
    except ImportError as error:
        raise UserError(f"the viewer needs napari ({error})", key="recon view",
                        fix="pip install 'recon[gui]'") from None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY is not set)", key="recon view",
                        fix="run it on a desktop or over ssh -X; headless: xvfb-run recon view ... --screenshot X.png")
    open_viewer(files, ndisplay=3 if three_d else 2, screenshot=screenshot)


def _add_sub_apps() -> None:
    from recon.importing import import_command
    from recon.training.cli import train_app

    app.add_typer(train_app, name="train")
    app.command("import")(import_command)


_add_sub_apps()


def _install_sigterm_handler() -> None:
    """SIGTERM raises KeyboardInterrupt so that atomic writes clean up their temporary files."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@functools.cache
def _command() -> click.Command:
    """The click command typer builds from ``app`` (built once: it takes about 0.3 s)."""
    return typer.main.get_command(app)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr: ``warning: message``."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (2 user error, 1 internal failure or a
    computation that produced NaN/Inf, 130 interrupt). Every error is one line on stderr (a traceback with
    ``--debug``)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    _install_sigterm_handler()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("always", ReconWarning)
            code = _command().main(args=argv, prog_name="recon", standalone_mode=False)
    except UserError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ComputationFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, click.Abort, typer.Abort):
        print("interrupted", file=sys.stderr)
        return 130
    except (click.ClickException, typer.TyperException) as error:  # a usage error found by typer (its own click copy)
        context = getattr(error, "ctx", None)
        command = context.command_path if context is not None else "recon"
        print(f"error: {error.format_message()}; fix: see `{command} --help`", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except Exception as error:  # an internal failure: say so plainly, traceback with --debug
        if debug:
            traceback.print_exc()
        message = f"{error.__class__.__name__}: {error}".splitlines()[0]
        print(f"internal error: {message} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
