"""`recon methods`, `--method '?'`, `--version` and the help texts, as a user runs them (subprocesses)."""

import re
import subprocess
import sys

import pytest

from recon.methods import all_methods

from .conftest import run_cli


def listed(stdout: str) -> set[str]:
    """The method names of a `recon methods` listing (rows between the header and the blank line)."""
    lines = stdout.splitlines()
    return {line.split()[0] for line in lines[1:lines.index("")]}


def test_methods_prints_one_line_per_method_with_family_and_specs():
    result = run_cli("methods")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for method in all_methods():
        line = next(line for line in lines if line.split()[:1] == [method.name])
        assert method.family in line and all(spec.removesuffix("/1") in line for spec in method.specs)
    assert len(lines) < len(all_methods()) + 5


def test_methods_spec_filters_and_refuses_an_unknown_spec():
    result = run_cli("methods", "--spec", "mimo-nearfield")
    assert result.returncode == 0, result.stderr
    assert listed(result.stdout) == {m.name for m in all_methods() if "mimo-nearfield/1" in m.specs}
    result = run_cli("methods", "--spec", "pet")
    assert result.returncode == 2 and "ct-parallel/1" in result.stderr


def test_methods_name_shows_parameters_defaults_priors_and_weights():
    result = run_cli("methods", "pnp-admm")
    assert result.returncode == 0, result.stderr
    assert "iterations=30" in result.stdout and "sigma=" in result.stdout
    assert "default drunet" in result.stdout and "drunet-mri" in result.stdout
    assert "drunet-radar" not in result.stdout  # a 3D prior: pnp-admm cannot use it
    assert re.search(r"^  drunet-ct: .*held-out PSNR", result.stdout, re.M)
    unfolded = run_cli("methods", "unfolded-ista")
    assert "unfolded-ista-sparse-linear" in unfolded.stdout and "takes none" in unfolded.stdout
    unknown = run_cli("methods", "pnp-adm")
    assert unknown.returncode == 2 and "pnp-admm" in unknown.stderr


def test_reconstruct_lists_the_methods_for_the_file(ct_file):
    asked = run_cli("reconstruct", ct_file, "--method", "?")
    assert asked.returncode == 0, asked.stderr
    assert listed(asked.stdout) == {m.name for m in all_methods() if "ct-parallel/1" in m.specs}
    for args in ([], ["--method", "tvv"]):
        result = run_cli("reconstruct", ct_file, *args)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
        assert "for ct-parallel/1 files choose one of" in result.stderr and "fbp" in result.stderr
        assert "kirchhoff" not in result.stderr
    wrong = run_cli("reconstruct", ct_file, "--method", "kirchhoff")
    assert wrong.returncode == 2 and "does not accept ct-parallel/1" in wrong.stderr


def test_version_and_help_keep_bracketed_defaults():
    version = run_cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"recon \S+\n", version.stdout)
    simulate = run_cli("simulate", "--help")
    text = " ".join(simulate.stdout.split())  # help is wrapped to the terminal width
    for bracketed in ("[bit-reversal]", "[pi]", "[auto]", "[60]", "[64; 128 dynamic]", "[diagonal-12x13]"):
        assert bracketed in text
    assert "[default: 0]" in text  # typer's own defaults too


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["simulate", "--help"], ["train", "denoiser", "--help"],
                                  ["info", "missing.h5"], ["view", "missing.h5"]])
def test_quick_commands_do_not_import_torch(args, tmp_path):
    probe = ("import sys; from recon.cli import main; code = main(sys.argv[1:]); "
             "print('HEAVY', sorted(m for m in ('torch', 'deepinv') if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
