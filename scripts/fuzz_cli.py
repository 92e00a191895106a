"""Fuzz the recon CLI with mutated measurement files and print a table of outcomes.

Each case writes a tiny valid file of one of the six measurement specs, mutates it (tests/cli/mutations.py:
dtypes, shapes, NaN/Inf, extreme values, missing keys, wrong attributes, soft/external/dangling/self links,
h5py.Empty, corrupted gzip chunks, huge declared datasets, truncated or damaged files), then runs
``recon reconstruct`` and ``recon info`` on it through the CLI's entry point (``recon.cli.main`` in this
process; ``--subprocess K`` runs every K-th case through the ``recon`` console script instead).

The contract checked: ``reconstruct`` exits 0 with a finite output, or 2 with exactly one line on stderr,
never 1 and never a traceback, leaves no file behind, never changes its input; ``info`` exits 0 or 2, no
traceback, within the time limit. Prints a markdown table per spec and mutation and writes the cases to JSON.

    python scripts/fuzz_cli.py --n 1000 --subprocess 50 --json bench_results/fuzz_cli.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "io")]

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from tests.cli.mutations import SPECS, make_case  # noqa: E402

RECON = str(Path(sys.executable).with_name("recon"))
INPUTS = {"in.h5", "sibling.h5"}


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs too long (not an Exception, so the CLI does not catch it)."""


def _alarm(signum, frame):
    raise CaseTimeout


def run_in_process(args: list[str], timeout: float) -> tuple[int, str, str]:
    from recon.cli import main

    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except CaseTimeout:
        code = -1
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(args: list[str], timeout: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run([RECON, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, "", ""
    return done.returncode, done.stdout, done.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _finite_output(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return bool(np.isfinite(f["reconstruction"][()]).all())
    except (OSError, KeyError):
        return False


def check_case(case, via_subprocess: bool, timeout: float) -> dict:
    """Run reconstruct and info on ``case`` and return the outcome with every broken promise listed."""
    run = run_subprocess if via_subprocess else run_in_process
    folder = case.path.parent
    before = {p.name for p in folder.iterdir()}
    digest = _digest(case.path)
    out = folder / "out.h5"
    start = time.perf_counter()
    code, _, stderr = run(["reconstruct", str(case.path), "--method", case.method, "--out", str(out)], timeout)
    seconds = time.perf_counter() - start
    lines = stderr.strip().splitlines()
    broken = []
    if code not in (0, 2):
        broken.append(f"exit {code}")
    if code == 2 and (len(lines) != 1 or not lines[0].startswith("error: ")):
        broken.append(f"{len(lines)} stderr lines")
    if "Traceback" in stderr:
        broken.append("traceback")
    if code == 0 and not _finite_output(out):
        broken.append("output missing or not finite")
    left = sorted({p.name for p in folder.iterdir()} - before - ({"out.h5"} if code == 0 else set()))
    if left:
        broken.append(f"left behind: {left}")
    if _digest(case.path) != digest:
        broken.append("input changed")
    start = time.perf_counter()
    info_code, _, info_err = run(["info", str(case.path)], timeout)
    info_seconds = time.perf_counter() - start
    if info_code not in (0, 2):
        broken.append(f"info exit {info_code}")
    if "Traceback" in info_err or "internal error" in info_err:
        broken.append("info traceback")
    return {"spec": case.spec, "mutation": case.mutation, "detail": case.detail, "method": case.method,
            "subprocess": via_subprocess, "exit": code, "seconds": round(seconds, 3), "info_exit": info_code,
            "info_seconds": round(info_seconds, 3), "traceback": "Traceback" in stderr + info_err,
            "left_behind": left, "stderr": lines[-1] if lines else "", "broken": broken}


def table(results: list[dict], by: str) -> str:
    rows = [f"| {by} | cases | exit 0 | exit 2 | exit 1 | other | tracebacks | files left | broken | info 0/2 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    groups = sorted({r[by] for r in results})
    for name in [*groups, "all"]:
        chosen = [r for r in results if name in ("all", r[by])]
        exits = Counter(r["exit"] for r in chosen)
        info = Counter(r["info_exit"] for r in chosen)
        other = len(chosen) - exits[0] - exits[1] - exits[2]
        rows.append(f"| {'**all**' if name == 'all' else name} | {len(chosen)} | {exits[0]} | {exits[2]} | "
                    f"{exits[1]} | {other} | {sum(r['traceback'] for r in chosen)} | "
                    f"{sum(bool(r['left_behind']) for r in chosen)} | {sum(bool(r['broken']) for r in chosen)} | "
                    f"{info[0]}/{info[2]} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of mutated files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subprocess", type=int, default=50, help="run every K-th case as a subprocess (0: none)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per command")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit of this process")
    parser.add_argument("--json", type=Path, default=ROOT / "bench_results" / "fuzz_cli.json")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    results = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recon-fuzz-") as tmp:
        for i in range(args.n):
            rng = np.random.default_rng([args.seed, i])
            case = make_case(SPECS[i % len(SPECS)], rng, Path(tmp) / f"case{i:05d}")
            via_subprocess = bool(args.subprocess) and i % args.subprocess == 0
            result = check_case(case, via_subprocess, args.timeout)
            results.append({"case": i, **result})
            if result["broken"]:
                print(f"case {i} {case.spec} {case.mutation} ({case.detail}) {case.method}: "
                      f"{'; '.join(result['broken'])}: {result['stderr']}", file=sys.stderr)
    wall = time.perf_counter() - start
    command = "python scripts/fuzz_cli.py " + " ".join(sys.argv[1:])
    text = "\n\n".join([f"{args.n} mutated files, seed {args.seed}, {wall:.0f} s ({command})",
                        table(results, "spec"), table(results, "mutation")])
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": command, "wall_s": wall, "cases": results}, indent=1))
    return 1 if any(r["broken"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
