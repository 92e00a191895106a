"""How fast the `recon` command answers: wall time of quick commands and validation errors, and whether each
imported torch or deepinv (the target: under 1 s, neither imported).

    .venv/bin/python scripts/bench_cli.py [--runs 5] [--json bench_results/cli.json]

Each command runs ``--runs`` times as the installed console script (``.venv/bin/recon``, a fresh process each
time, as a user types it) after one untimed run; the table gives the median and the fastest wall time. The
commands run with Python's bytecode cache on, as an installed package has it: an environment that sets
PYTHONDONTWRITEBYTECODE (this development machine does) recompiles recon's modules on every start, about
0.17 s more per command. One more run of each under
``python -X importtime -m recon.cli`` tells which of torch and deepinv it imported. The files the commands read
(a small valid CT measurement, a broken one) are made first in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECON = Path(sys.executable).with_name("recon")
HEAVY = ("torch", "deepinv")


def commands(folder: Path) -> list[tuple[str, list[str]]]:
    """(label, arguments) of every case; FILE is a valid ct-parallel/1 file, BAD one without its angles."""
    good, bad = str(folder / "ct.h5"), str(folder / "bad.h5")
    return [
        ("recon --help", ["--help"]),
        ("recon --version", ["--version"]),
        ("recon reconstruct --help", ["reconstruct", "--help"]),
        ("recon methods", ["methods"]),
        ("recon methods --spec mri-cartesian", ["methods", "--spec", "mri-cartesian"]),
        ("recon methods pnp-admm", ["methods", "pnp-admm"]),
        ("recon info FILE", ["info", good]),
        ("recon info BAD (error: a dataset missing)", ["info", bad]),
        ("recon info missing.h5 (error)", ["info", str(folder / "missing.h5")]),
        ("recon reconstruct FILE --method '?'", ["reconstruct", good, "--method", "?"]),
        ("recon reconstruct FILE (error: no method)", ["reconstruct", good]),
        ("recon reconstruct FILE --method tvv (error)", ["reconstruct", good, "--method", "tvv"]),
        ("recon reconstruct FILE --method kirchhoff (error: not for CT)", ["reconstruct", good, "--method",
                                                                          "kirchhoff"]),
        ("recon reconstruct FILE --method tv --set bogus=1 (error)", ["reconstruct", good, "--method", "tv",
                                                                       "--set", "bogus=1"]),
        ("recon simulate ct-parallel --phantom nope (error)", ["simulate", "ct-parallel", "--phantom", "nope",
                                                               "--out", str(folder / "o.h5")]),
        ("recon view missing.h5 (error)", ["view", str(folder / "missing.h5")]),
    ]


def make_files(folder: Path) -> None:
    import h5py
    import numpy as np

    with h5py.File(folder / "ct.h5", "w") as file:
        file.attrs["recon_spec"] = "ct-parallel/1"
        file.attrs["image_shape"] = [16, 16]
        file["sinogram"] = np.zeros((8, 23), np.float32)
        file["angles"] = np.linspace(0, np.pi, 8, endpoint=False)
    with h5py.File(folder / "bad.h5", "w") as file:
        file.attrs["recon_spec"] = "ct-parallel/1"
        file.attrs["image_shape"] = [16, 16]
        file["sinogram"] = np.zeros((8, 23), np.float32)


def wall_time(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run([str(RECON), *args], capture_output=True, env=env, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start, done.returncode


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """Which of HEAVY a run of ``args`` imports (from ``-X importtime``'s report on stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "recon.cli", *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL)
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median reported)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench_results" / "cli.json")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "100"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_files(folder)
        for label, arguments in commands(folder):
            wall_time(arguments, env)  # untimed: writes the bytecode cache, as a user's first run does
            times, codes = zip(*(wall_time(arguments, env) for _ in range(args.runs)), strict=True)
            rows.append({"command": label, "median_s": statistics.median(times), "min_s": min(times),
                         "exit_code": codes[0], "imports": heavy_imports(arguments, env)})
    print(f"| command | exit code | median wall (s), {args.runs} runs | fastest (s) | imports torch / deepinv |")
    print("|---|---|---|---|---|")
    for row in rows:
        heavy = ", ".join(row["imports"]) or "neither"
        print(f"| `{row['command']}` | {row['exit_code']} | {row['median_s']:.2f} | {row['min_s']:.2f} | {heavy} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "python": sys.version.split()[0], "rows": rows}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
