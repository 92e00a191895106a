"""Fuzz the recon CLI with mutated measurement files and print a table of outcomes.

Each case writes a tiny valid file of one of the six measurement specs, mutates it (tests/cli/fuzzing.py:
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
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "io")]

import numpy as np  # noqa: E402

from tests.cli.fuzzing import SPECS, check_case, make_case  # noqa: E402


def table(results: list[dict], by: str) -> str:
    rows = [f"| {by} | cases | exit 0 | exit 2 | exit 1 | other | tracebacks | files left | broken | info 0/2 | "
            "slowest s (reconstruct / info) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = sorted({r[by] for r in results})
    for name in [*groups, "all"]:
        chosen = [r for r in results if name in ("all", r[by])]
        exits = Counter(r["exit"] for r in chosen)
        info = Counter(r["info_exit"] for r in chosen)
        other = len(chosen) - exits[0] - exits[1] - exits[2]
        rows.append(f"| {'**all**' if name == 'all' else name} | {len(chosen)} | {exits[0]} | {exits[2]} | "
                    f"{exits[1]} | {other} | {sum(r['traceback'] for r in chosen)} | "
                    f"{sum(bool(r['left_behind']) for r in chosen)} | {sum(bool(r['broken']) for r in chosen)} | "
                    f"{info[0]}/{info[2]} | {max(r['seconds'] for r in chosen):.2f} / "
                    f"{max(r['info_seconds'] for r in chosen):.2f} |")
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
    with tempfile.TemporaryDirectory(prefix="recon-fuzz-") as tmp:
        for spec in SPECS:  # warm up (imports, first operators) outside the timed cases
            check_case(make_case(spec, np.random.default_rng(0), Path(tmp) / f"warmup-{spec}", mutation="extra"))
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
