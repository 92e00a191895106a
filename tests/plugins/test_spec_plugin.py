"""A spec added by a plugin package, through the ``recon.specs`` entry point and no edit to recon: the toy
``toy-blur/1`` of ``tests/plugins/toy_spec`` (2D images under deepinv's Gaussian Blur, simulated by ``recon
simulate toy-blur``) is installed into a
scratch site folder (a dist-info whose entry points are those of the package's pyproject.toml), and recon's
generic methods (adjoint, cgls, tv, pnp-admm) and the package's own method and prior (toy-landweber with
toy-nonneg, through the ``recon.methods`` and ``recon.priors`` entry points) reconstruct a real HDF5 file of it,
through the pipeline and the ``recon`` command line, in fresh interpreters."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

PACKAGE = Path(__file__).parent / "toy_spec"
RECON = str(Path(sys.executable).with_name("recon"))
METHODS = ("adjoint", "cgls", "tv", "pnp-admm", "toy-landweber")


def install(site: Path) -> dict[str, str]:
    """Make the toy package importable with its entry points (as ``pip install`` would register them) and return
    the environment of a subprocess that sees it."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                        f"Version: {project['version']}\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()))
    path = os.pathsep.join([str(site), str(PACKAGE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def recon(env: dict[str, str], *args) -> subprocess.CompletedProcess:
    return subprocess.run([RECON, *map(str, args)], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A toy-blur file made by ``recon simulate toy-blur`` (the plugin's simulator): two 64^2 Shepp-Logan slices,
    Gaussian blur of 1.5 px, 1 % noise."""
    folder = tmp_path_factory.mktemp("toy")
    env = install(folder / "site")
    image = resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True).astype(np.float32)
    np.save(folder / "truth.npy", np.stack([image, image[:, ::-1]]))
    path = folder / "toy.h5"
    made = recon(env, "simulate", "toy-blur", "--volume", folder / "truth.npy", "--noise-std", "0.01", "--out", path)
    assert made.returncode == 0, made.stderr
    with h5py.File(path) as file:
        assert file.attrs["recon_spec"] == "toy-blur/1" and file["blurred"].shape == (2, 64, 64)
    return path, env


def test_the_spec_is_registered_and_its_files_validate(toy):
    path, env = toy
    listed = recon(env, "methods", "--spec", "toy-blur/1")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert set(METHODS) <= names and not {"fbp", "ista", "psm", "kirchhoff"} & names
    priors = recon(env, "methods", "toy-landweber")
    assert priors.returncode == 0 and "toy-nonneg" in priors.stdout, priors.stdout + priors.stderr
    info = recon(env, "info", path)
    assert info.returncode == 0 and "toy-blur/1" in info.stdout, info.stdout + info.stderr
    broken = path.with_name("broken.h5")
    with h5py.File(broken, "w") as file:
        file.attrs["recon_spec"] = "toy-blur/1"
        file["blurred"] = np.zeros((8, 8), np.float32)
    refused = recon(env, "info", broken)
    assert refused.returncode == 2 and "blur_sigma" in refused.stderr, refused.stdout + refused.stderr


def test_generic_methods_reconstruct_it_through_the_pipeline(toy):
    """adjoint, cgls, tv, pnp-admm (10 iterations, for time) and toy-landweber on the toy file: every output has
    the file's shape and axes, the others beat the adjoint (the blurred image, blurred again) by 3 dB, cgls stops
    by the discrepancy principle on the noise level the plugin's hook reads, and the napari reader shows the file
    as the kind's views say."""
    path, env = toy
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import h5py\n"
        "from recon.pipeline import Request, reconstruct\n"
        "path, scores = Path(sys.argv[1]), {}\n"
        f"for method in {METHODS!r}:\n"
        "    out = path.with_name(f'toy.{method}.h5')\n"
        "    params = {'iterations': 10} if method == 'pnp-admm' else {}\n"
        "    summary = reconstruct(Request(input=path, method=method, output=out, params=params, device='cpu'))\n"
        "    with h5py.File(out) as f:\n"
        "        scores[method] = [summary.metrics['psnr'], list(f['reconstruction'].shape), f.attrs['axes'],\n"
        "                          json.loads(f.attrs['params'])]\n"
        "from recon_napari.layers import read_layers\n"
        "scores['layers'] = [[kwargs['name'], list(kwargs['axis_labels'])] for _, kwargs, _ in read_layers(path)]\n"
        "print(json.dumps(scores))\n")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.splitlines()[-1])
    print(scores)
    assert scores.pop("layers") == [["toy [blurred]", ["z", "y", "x"]], ["toy [ground truth]", ["z", "y", "x"]]]
    assert all(shape == [2, 64, 64] and axes == "z,y,x" for _, shape, axes, _ in scores.values()), scores
    assert scores["cgls"][3]["iterations_rule"].startswith("discrepancy principle")  # the plugin's noise hook
    adjoint = scores["adjoint"][0]
    assert all(scores[method][0] > adjoint + 3 for method in ("cgls", "tv", "pnp-admm", "toy-landweber")), scores


def test_the_command_line_reconstructs_it(toy):
    path, env = toy
    out = path.with_name("cli.cgls.h5")
    result = recon(env, "reconstruct", path, "--method", "cgls", "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as file:
        assert file.attrs["recon_spec"] == "reconstruction/1" and file["reconstruction"].shape == (2, 64, 64)
        assert file["reconstruction"].dtype == np.float32
