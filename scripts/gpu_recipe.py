"""Train wider priors on one GPU within a wall-clock budget, then benchmark them against the shipped weights.

    python scripts/training_data.py                     # the offline pack (on a machine with the data packages)
    python scripts/bench_learned_priors.py --prepare --folder build/bench-files   # the held-out measurements
    python scripts/gpu_recipe.py --device cuda --out build/gpu --minutes 9
    python scripts/gpu_recipe.py --tiny --device cpu --out /tmp/recipe     # the test's run, tiny sizes

Stages: the shipped priors' own recipes (scripts/train_{diffusion,lpn,denoiser}_weights.py, their data and
options) with wider networks where the GPU affords them — diffusion-ct at width 64 (twice the shipped 32), lpn-ct
and lpn-mri with 96 hidden channels (twice 48), drunet-ct and drunet-mri as shipped (width 32, 2 blocks), longer —
run as ``recon train`` commands with ``--minutes`` (the schedule ends at a wall-clock deadline), ``--precision``
(bf16 autocast for the UNets, TF32 for the LPNs, whose loss differentiates through the network's gradient) and
``--bank`` (patches drawn once onto the GPU, batches sampled there, so the GPU never waits for the CPU). The
stages run side by side on the one GPU, one process each (small networks leave most of an H200 idle), in lanes:
diffusion-ct then diffusion-mri (fine-tuned from the new diffusion-ct, as the shipped one was), lpn-ct, lpn-mri,
drunet-ct, drunet-mri. Training ends ``--bench-minutes`` before ``--minutes``; then
scripts/bench_learned_priors.py runs its held-out cases in this process (``--in-process --reuse`` on the measurement
files of ``--bench-files``, made beforehand: the GPU machine lacks the data packages), once with the shipped weights
and once with the new ones, starting no new case after the deadline. It prints, per new weights file, whether it
beats the shipped one on every row where it is used (mean PSNR gain > 0, no row more than 0.2 dB worse) and the
command that copies the winners into recon/weights (the shipped weights change only then, by hand). Writes the
weights and cards, recipe.json (stages, times, the verdicts) and the benchmark rows to ``--out``.

``--tiny``: every network and batch tiny, a few seconds per stage, the benchmark on a 64^2 Shepp-Logan case with
a few iterations, stages one after another in this process (no process start each): what tests/training runs on
the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench_learned_priors  # noqa: E402
import train_denoiser_weights  # noqa: E402
import train_diffusion_weights  # noqa: E402
import train_lpn_weights  # noqa: E402
from training_data import DEFAULT_OUT  # noqa: E402

RECIPES = {"diffusion": train_diffusion_weights.recipes, "lpn": train_lpn_weights.recipes,
           "denoiser": train_denoiser_weights.recipes}
COMMON = {"diffusion": ["--seed", "0"], "lpn": list(train_lpn_weights.NETWORK),
          "denoiser": ["--sigma-max", "0.2", "--seed", "0"]}
"""The options each shipped recipe adds to its data options (as its train_*_weights.py script does)."""


@dataclass
class Stage:
    """One ``recon train KIND`` run: the shipped recipe ``name`` plus ``options`` (later options win), given
    ``share`` of its lane's training time."""

    kind: str
    name: str
    options: list[str] = field(default_factory=list)
    share: float = 1.0


def lanes(out: Path, tiny: bool) -> list[list[Stage]]:
    """The stages, in lanes that run side by side (a lane's stages one after another)."""
    if tiny:
        diffusion = ["--size", "32", "--patch", "16", "--batch", "2", "--width", "32", "--mult", "1,2", "--blocks", "1",
                     "--steps", "3"]
        lpn = ["--hidden", "4", "--layers", "2", "--batch", "2", "--patch", "16", "--steps", "4"]
        denoiser = ["--width", "4", "--blocks", "1", "--patch", "16", "--batch", "2", "--steps", "3"]
        speed = ["--bank", "8", "--precision", "bf16"]
        lpn_speed = ["--bank", "8", "--precision", "tf32"]
    else:
        diffusion = ["--width", "64", "--batch", "64", "--steps", "40000"]
        lpn = ["--hidden", "96", "--batch", "64", "--steps", "40000"]
        denoiser = ["--batch", "64", "--steps", "40000"]
        speed = ["--bank", "20000", "--precision", "bf16", "--channels-last"]
        lpn_speed = ["--bank", "20000", "--precision", "tf32"]
    return [
        [Stage("diffusion", "diffusion-ct", [*diffusion, *speed], 0.75),
         Stage("diffusion", "diffusion-mri", [*diffusion, *speed, "--init", str(out / "diffusion-ct.safetensors")],
               0.25)],
        [Stage("lpn", "lpn-ct", [*lpn, *lpn_speed])],
        [Stage("lpn", "lpn-mri", [*lpn, *lpn_speed])],
        [Stage("denoiser", "drunet-ct", [*denoiser, *speed])],
        [Stage("denoiser", "drunet-mri", [*denoiser, *speed])],
    ]


def command(stage: Stage, data: Path, out: Path, device: str, minutes: float) -> list[str]:
    """The ``recon train`` arguments of ``stage`` (without the program)."""
    return ["train", stage.kind, *RECIPES[stage.kind](data)[stage.name], *COMMON[stage.kind], *stage.options,
            "--minutes", f"{minutes:.3f}", "--device", device, "--out", str(out / f"{stage.name}.safetensors"),
            "--overwrite"]


def train(stages: list[list[Stage]], data: Path, out: Path, device: str, deadline: float, serial: bool,
          script: str) -> list[dict]:
    """Run the lanes (side by side as processes, or all in this process when ``serial``) until ``deadline``
    (time.perf_counter()); ``script``: the recipe's command line, for the cards. Returns a record per stage."""
    from recon.cli import main as recon_main

    records = []
    if serial:
        queue = [stage for lane in stages for stage in lane]
        for index, stage in enumerate(queue):
            share = (deadline - time.perf_counter()) / (len(queue) - index)
            records.append(run_stage(stage, data, out, device, share, script,
                                     lambda args: in_process(recon_main, args)))
        return records
    env = {**os.environ, "OMP_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    running = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--lane", json.dumps(
        {"stages": [stage.__dict__ for stage in lane], "data": str(data), "out": str(out), "device": device,
         "deadline_s": deadline - time.perf_counter(), "script": script})], env=env, stdout=subprocess.PIPE, text=True,
        cwd=ROOT)
        for lane in stages]
    for process in running:
        stdout, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a training lane failed ({process.returncode}); its output:\n{stdout[-4000:]}")
        records.extend(json.loads(stdout.strip().splitlines()[-1]))
    return records


def in_process(recon_main, args: list[str]) -> int:
    """``recon ARGS`` in this process, with sys.argv set as the CLI would see it (its cards record it)."""
    from unittest import mock

    with mock.patch.object(sys, "argv", ["recon", *args]):
        return recon_main(args)


def run_lane(spec: dict) -> None:
    """``--lane JSON``: one lane's stages one after another, each ``recon train`` in its own process (so a crash
    or a CUDA error stays in it), the lane's time split by the stages' shares; prints the records as JSON."""
    deadline = time.perf_counter() + spec["deadline_s"]
    stages = [Stage(**stage) for stage in spec["stages"]]
    recon = [sys.executable, "-m", "recon.cli"]
    records = []
    for index, stage in enumerate(stages):
        left = sum(s.share for s in stages[index:])
        seconds = (deadline - time.perf_counter()) * stage.share / left
        records.append(run_stage(stage, Path(spec["data"]), Path(spec["out"]), spec["device"], seconds, spec["script"],
                                 lambda args: subprocess.run([*recon, *args], cwd=ROOT).returncode))
    print(json.dumps(records))


STARTUP_S = 20.0
"""What a stage spends before its training loop (imports, CUDA, data, the bank, validation sets): kept out of the
budget given to --minutes so that the stage ends by its share of the deadline."""


def run_stage(stage: Stage, data: Path, out: Path, device: str, seconds: float, script: str, execute) -> dict:
    """Train ``stage`` in about ``seconds`` with ``execute(recon arguments) -> exit code``; the card records
    ``script``. Returns the stage's record."""
    minutes = max(0.05, (seconds - STARTUP_S) / 60) if seconds > 2 * STARTUP_S else max(0.01, seconds / 120)
    args = command(stage, data, out, device, minutes)
    print(f"[{time.strftime('%H:%M:%S')}] recon {shlex.join(args)}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    code = execute(args)
    if code != 0:
        raise SystemExit(f"recon train {stage.kind} ({stage.name}) failed with exit code {code}")
    card_file = out / f"{stage.name}.json"
    card = json.loads(card_file.read_text())
    card["script"] = script
    card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return {"name": stage.name, "seconds": round(time.perf_counter() - began, 1), "budget_minutes": minutes,
            "optimiser_steps": card.get("optimiser_steps"), "validation": {
                k: v for k, v in card["validation"].items() if k != "history"}}


def bench(out: Path, files: Path, device: str, tiny: bool, minutes: float) -> list[dict]:
    """The benchmark rows, shipped weights (label "shipped") then the new ones (label "new")."""
    json_path = out / "bench.json"
    common = ["--device", device, "--in-process", "--json", str(json_path), "--minutes", f"{minutes / 2:.3f}"]
    if tiny:
        common += ["--cases", "shepp-ct16", "--folder", str(out / "bench"), "--set", "dds.nfe=3",
                   "--set", "lpn.iterations=2", "--set", "pnp-admm.iterations=2", "--set", "tv.iterations=5"]
    else:
        common += ["--reuse", "--folder", str(files)]
    shipped = bench_learned_priors.main([*common, "--label", "shipped"])
    new = bench_learned_priors.main([*common, "--label", "new", "--methods", *bench_learned_priors.LEARNED,
                                     "--weights-dir", str(out), "--cases", *dict.fromkeys(r["case"] for r in shipped)])
    return shipped + new


def verdicts(rows: list[dict], out: Path) -> dict[str, dict]:
    """Per new weights file: the rows where it was used, the mean PSNR gain over the shipped weights, and whether
    it beats them (gain > 0, no row worse by more than 0.2 dB)."""
    shipped = {(r["case"], r["method"]): r["psnr"] for r in rows if r["label"] == "shipped"}
    table: dict[str, dict] = {}
    for row in (r for r in rows if r["label"] == "new" and "weights" in r["settings"]):
        name = Path(row["settings"]["weights"]).stem
        gain = row["psnr"] - shipped[(row["case"], row["method"])]
        table.setdefault(name, {"gains": {}})["gains"][row["case"]] = round(gain, 2)
    for name, entry in table.items():
        gains = list(entry["gains"].values())
        entry["mean_gain"] = round(sum(gains) / len(gains), 2)
        entry["better"] = entry["mean_gain"] > 0 and min(gains) >= -0.2
        entry["files"] = [str(out / f"{name}.safetensors"), str(out / f"{name}.json")]
    return table


def preflight(files: Path) -> None:
    """Open every measurement file of the benchmark before any training, as the benchmark will: an environment
    that cannot (recon not installed, so its spec files are missing; a package missing) fails here in seconds
    instead of after the training budget (as the first GPU run did)."""
    paths = sorted(files.glob("*.h5"))
    if not paths:
        raise SystemExit(f"{files}: no measurement files; run scripts/bench_learned_priors.py --prepare "
                         f"--folder {files} first")
    for path in paths:
        try:
            bench_learned_priors.spec_of(path)
        except Exception as err:  # noqa: BLE001  (any failure here is the environment's; say which and stop)
            raise SystemExit(f"{path}: the benchmark cannot open it here ({type(err).__name__}: {err}); install recon "
                             "(pip install --no-deps -e .) and its dependencies before training") from err


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu")
    parser.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget of the whole recipe")
    parser.add_argument("--bench-minutes", type=float, default=2.5, help="of which the benchmark's")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="folder of scripts/training_data.py")
    parser.add_argument("--bench-files", type=Path, default=ROOT / "build" / "bench-files",
                        help="the held-out measurement files (bench_learned_priors.py --prepare --folder ...)")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and a tiny benchmark (the CPU test)")
    parser.add_argument("--lane", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.lane:
        run_lane(json.loads(args.lane))
        return {}
    began = time.perf_counter()
    if not (args.data / "mni152.npy").exists():
        raise SystemExit(f"{args.data}: no training data; run scripts/training_data.py first")
    if not args.tiny:
        preflight(args.bench_files)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device here")
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = began + 60 * (args.minutes - args.bench_minutes)
    script = shlex.join(["python", "scripts/gpu_recipe.py", *(sys.argv[1:] if argv is None else argv)])
    stages = train(lanes(args.out, args.tiny), args.data, args.out, args.device, deadline, args.tiny, script)
    trained_s = time.perf_counter() - began
    rows = bench(args.out, args.bench_files, args.device, args.tiny, args.minutes - (time.perf_counter() - began) / 60)
    table = verdicts(rows, args.out)
    report = {"stages": stages, "training_s": round(trained_s, 1), "total_s": round(time.perf_counter() - began, 1),
              "verdicts": table, "command": script}
    (args.out / "recipe.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\ntraining {trained_s:.0f} s, all {report['total_s']:.0f} s")
    for name, entry in sorted(table.items()):
        print(f"{name}: mean {entry['mean_gain']:+.2f} dB over the shipped weights {entry['gains']} -> "
              f"{'BETTER' if entry['better'] else 'not better'}")
    winners = [file for entry in table.values() if entry["better"] for file in entry["files"]]
    print(f"copy the better weights: cp {' '.join(winners)} recon/weights/" if winners else "no new weights are better")
    return report


if __name__ == "__main__":
    main()
