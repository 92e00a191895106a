"""Deep unfolded ISTA / IHT study (Nagahisa, Hayakawa, Iiguni, arXiv 2509.01331; docs/guides/sparse.md).

The paper's setup: x in R^150 with 12 nonzeros N(0, 1) (Bernoulli-Gaussian), y = A x + noise in R^75,
A Gaussian with entries N(0, 1/m) drawn afresh for every training batch and every test batch, 10 dB SNR.
lam = 0.1 for l1 and 0.05 for l0 (the values with the best converged NMSE, see the README), T layers.

Compared per layer / iteration on held-out test batches (their own matrices): NMSE ||x - x*||^2 / ||x*||^2
and the objective 1/2||y - A x||^2 + lam R(x) of ISTA, FISTA (deepinv), supervised and unsupervised DU-ISTA,
IHT, supervised and unsupervised DU-IHT; then a train/test mismatch (test at 20 dB SNR, and with 20
nonzeros, for networks trained at 10 dB with 12). ISTA and IHT are the unfolded networks with every step
1/||A||^2 (s_t = 0), i.e. exactly recon's ``ista``/``iht`` methods (tests/solvers/test_unfolded.py).

Imaging part: the shipped MRI weights (scripts/train_unfolded_weights.py: trained unsupervised on
measurements of other pictures) on a Shepp-Logan phantom they never saw, end to end through the CLI
(`recon simulate` -> `recon reconstruct`), against adjoint, cgls and plain wavelet ISTA (the untrained
network: step 1/L, same lam, same Haar basis) at T, 10 T and 100 T iterations.

    .venv/bin/python scripts/unfolded_study.py [--part sparse|imaging|all]   # about 8 minutes, one thread

Prints the tables and the paper's findings checked one by one, writes bench_results/unfolded_study.json
(sparse), bench_results/unfolded_imaging.json (imaging) and docs/images/unfolded_study.png.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import deepinv as dinv
import h5py
import numpy as np
import torch
from train_unfolded_weights import recon  # (scripts/ is on the path when this runs as a script)

from recon.io.measurement import MeasurementFile
from recon.metrics import quality
from recon.models.unfolded import UnfoldedConfig, UnfoldedThresholding, load_unfolded, objective
from recon.problems import build_problem
from recon.solvers.linalg import per_sample
from recon.solvers.unfolded import sample_scale
from recon.training.unfolded import Batch, Schedule, make_batch, synthetic_sparse_sampler, train
from recon.weights import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parent.parent
SETUP = {"m": 75, "n": 150, "k": 12, "snr_db": 10.0}
LAM = {"ista": 0.1, "iht": 0.05}
MISMATCH = {"20 dB SNR": {"snr_db": 20.0}, "20 nonzeros": {"k": 20}}
CONVERGED = 100  # ISTA/IHT "converged" = 100 T iterations
RECON = str(Path(sys.executable).with_name("recon"))
IMAGING_DIR = Path("bench_results/unfolded_imaging")  # relative to ROOT, where the commands run
MRI_EVAL = ("mri-cartesian", "--phantom", "shepp-logan-3d", "--size", "64", "--coils", "4", "--acceleration", "4",
            "--mask", "poisson2d", "--noise-std", "0.01", "--with-coil-maps", "--seed", "100")
EVAL_SLICES = "24:40"
COLOURS = {"unsupervised": "tab:red", "supervised": "tab:green", "FISTA": "tab:orange", "I": "tab:blue"}


def test_batches(count: int, size: int, seed: int, **changes) -> list[Batch]:
    """``count`` test batches of ``size`` signals, each with its own matrix; ``changes`` override SETUP."""
    setup = {**SETUP, **changes}
    sample = synthetic_sparse_sampler(setup["m"], setup["n"], setup["k"], setup["snr_db"], size, seed,
                                      torch.device("cpu"))
    return [sample() for _ in range(count)]


@torch.no_grad()
def curves(model: UnfoldedThresholding, batches: list[Batch]) -> dict[str, list[float]]:
    """Mean objective per signal and NMSE over all signals, after each layer."""
    objectives = np.zeros(model.config.layers)
    errors = np.zeros(model.config.layers)
    energy = sum(float((b.truth**2).sum()) for b in batches)
    for batch in batches:
        problem, weight = batch.problem, model.config.lam * batch.lam_factor
        for t, (x, penalty) in enumerate(model.iterates(problem.physics, batch.y, problem.x_shape, batch.sqnorm,
                                                        weight)):
            objectives[t] += float(objective(problem.physics, batch.y, x, penalty, weight).sum())
            errors[t] += float(((x - batch.truth) ** 2).sum())
    signals = sum(b.y.shape[0] for b in batches)
    return {"objective": (objectives / signals).tolist(), "nmse": (errors / energy).tolist()}


@torch.no_grad()
def fista_curves(batches: list[Batch], lam: float, iterations: int) -> dict[str, list[float]]:
    """deepinv's FISTA from zero with step 1/||A||^2: objective and NMSE per iteration.

    deepinv reports the cost and the PSNR (peak 1) of each sample per iteration; the squared error of a
    sample is recovered from its PSNR as n 10^(-PSNR/10).
    """
    objectives, errors = np.zeros(iterations), np.zeros(iterations)
    energy = sum(float((b.truth**2).sum()) for b in batches)
    for batch in batches:
        x_shape = batch.problem.x_shape
        solver = dinv.optim.FISTA(data_fidelity=dinv.optim.L2(), prior=dinv.optim.L1Prior(), lambda_reg=lam,
                                  stepsize=1.0 / batch.sqnorm, max_iter=iterations, early_stop=False,
                                  custom_init=lambda y, physics, s=x_shape: (torch.zeros(s), torch.zeros(s)))
        _, metrics = solver(batch.y, batch.problem.physics, x_gt=batch.truth, compute_metrics=True)
        objectives += np.sum(np.asarray(metrics["cost"])[:, -iterations:], axis=0)
        psnr = np.asarray(metrics["psnr"])[:, -iterations:]  # (the first entry is the initial zero estimate's)
        errors += x_shape[-1] * np.sum(10 ** (-psnr / 10), axis=0)
    signals = sum(b.y.shape[0] for b in batches)
    return {"objective": (objectives / signals).tolist(), "nmse": (errors / energy).tolist()}


def train_networks(layers: int, steps: int, lr: float, batch_size: int) -> dict[str, UnfoldedThresholding]:
    """The four unfolded networks: DU-ISTA and DU-IHT, each supervised and unsupervised."""
    networks = {}
    for algo in ("ista", "iht"):
        for loss in ("supervised", "unsupervised"):
            name = f"DU-{algo.upper()} ({loss})"
            model = UnfoldedThresholding(UnfoldedConfig(algo, layers, LAM[algo], "sparse-linear/1"))
            sample = synthetic_sparse_sampler(SETUP["m"], SETUP["n"], SETUP["k"], SETUP["snr_db"], batch_size, 1,
                                              torch.device("cpu"))
            start = time.perf_counter()
            losses = train(model, sample, loss, Schedule(steps, lr, True, 0))
            print(f"trained {name}: loss {np.mean(losses[:20]):.4g} -> {np.mean(losses[-50:]):.4g} "
                  f"in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            networks[name] = model
    return networks


def baselines(algo: str, layers: int, iterations: int) -> UnfoldedThresholding:
    """Plain ISTA/IHT as an untrained network: every step 1/||A||^2."""
    return UnfoldedThresholding(UnfoldedConfig(algo, iterations, LAM[algo], "sparse-linear/1"))


def evaluate_all(networks: dict, batches: list[Batch], layers: int, with_fista: bool) -> dict[str, dict]:
    """Curves of every method on ``batches``: ISTA/IHT to 100 T iterations, FISTA to 10 T, the networks to T."""
    results = {"ISTA": curves(baselines("ista", layers, CONVERGED * layers), batches),
               "IHT": curves(baselines("iht", layers, CONVERGED * layers), batches)}
    if with_fista:
        results["FISTA"] = fista_curves(batches, LAM["ista"], 10 * layers)
    results.update({name: curves(model, batches) for name, model in networks.items()})
    return results


def at(curve: dict, iteration: int) -> dict[str, float]:
    return {key: values[iteration - 1] for key, values in curve.items()}


def table_rows(results: dict, layers: int) -> list[tuple[str, int, float, float]]:
    """(method, iterations, objective, NMSE) rows: baselines at T, 10 T and 100 T, networks at T."""
    rows = []
    for name, curve in results.items():
        counts = [layers] if name.startswith("DU") else [layers, 10 * layers, CONVERGED * layers]
        for count in counts:
            if count <= len(curve["nmse"]):
                point = at(curve, count)
                rows.append((name, count, point["objective"], point["nmse"]))
    return rows


def print_table(title: str, rows: list) -> None:
    print(f"\n{title}\n| method | iterations | objective | NMSE | NMSE (dB) |\n|---|---|---|---|---|")
    for name, count, value, nmse in rows:
        print(f"| {name} | {count} | {value:.4f} | {nmse:.4f} | {10 * np.log10(nmse):.2f} |")


def findings(results: dict, layers: int) -> list[tuple[str, bool, str]]:
    """The paper's three findings, each checked on the test curves: (claim, holds, figures)."""
    ista, iht = results["ISTA"], results["IHT"]
    sup, unsup = at(results["DU-ISTA (supervised)"], layers), at(results["DU-ISTA (unsupervised)"], layers)
    ista_10, ista_conv = at(ista, 10 * layers), at(ista, CONVERGED * layers)
    excess = unsup["objective"] / ista_10["objective"] - 1
    checks = [(
        f"unsupervised DU-ISTA ({layers} layers) is within 1% of the objective of ISTA after {10 * layers}",
        excess <= 0.01, f"{unsup['objective']:.4f} vs {ista_10['objective']:.4f} ({100 * excess:+.2f}%)"), (
        "supervised DU-ISTA has a lower NMSE than ISTA's solution but a higher objective",
        sup["nmse"] < ista_conv["nmse"] and sup["objective"] > ista_conv["objective"],
        f"NMSE {sup['nmse']:.4f} vs {ista_conv['nmse']:.4f}, objective {sup['objective']:.4f} vs "
        f"{ista_conv['objective']:.4f}")]
    iht_conv = at(iht, CONVERGED * layers)
    for loss in ("supervised", "unsupervised"):
        du = at(results[f"DU-IHT ({loss})"], layers)
        checks.append((f"{loss} DU-IHT ends at a lower NMSE than IHT (converged, {CONVERGED * layers} iterations)",
                       du["nmse"] < iht_conv["nmse"], f"{du['nmse']:.4f} vs {iht_conv['nmse']:.4f}"))
    return checks


def plot(results: dict, layers: int, path: Path) -> None:
    """NMSE and objective per iteration, l1 family on the left, l0 on the right (10 T iterations shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    families = {0: ("ISTA", "FISTA", "DU-ISTA (supervised)", "DU-ISTA (unsupervised)"),
                1: ("IHT", "DU-IHT (supervised)", "DU-IHT (unsupervised)")}
    for column, names in families.items():
        for name in names:
            curve = results[name]
            count = min(len(curve["nmse"]), 10 * layers)
            iterations = np.arange(1, count + 1)
            style = {"marker": "o", "markersize": 3} if name.startswith("DU") else {}
            style["color"] = next(c for key, c in COLOURS.items() if key in name)
            axes[0, column].semilogx(iterations, 10 * np.log10(curve["nmse"][:count]), label=name, **style)
            axes[1, column].loglog(iterations, curve["objective"][:count], label=name, **style)
        reference = results[names[0]]["objective"][-1]
        axes[1, column].axhline(reference, color="gray", linestyle="--", linewidth=1,
                                label=f"{names[0]} after {CONVERGED * layers}")
        axes[0, column].set_title(["l1: ISTA family", "l0: IHT family"][column])
        axes[0, column].set_ylabel("NMSE (dB)")
        axes[1, column].set_ylabel("objective 1/2||y - Ax||^2 + lam R(x)")
        axes[1, column].set_xlabel("iteration / layer")
        for row in (0, 1):
            axes[row, column].grid(True, which="both", alpha=0.3)
            axes[row, column].legend(fontsize=8)
    figure.suptitle(f"m=75, n=150, k=12, 10 dB, T={layers}; held-out test batches")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


@torch.no_grad()
def plain_wavelet_ista(path: Path, config: UnfoldedConfig, iterations: tuple[int, ...]) -> dict[int, dict]:
    """Plain wavelet ISTA (the untrained network) on EVAL_SLICES: PSNR, SSIM, objective and the seconds spent
    iterating, after each of ``iterations``."""
    start, stop = (int(v) for v in EVAL_SLICES.split(":"))
    with MeasurementFile(path) as measurement:
        problem = build_problem(measurement, slice(start, stop), torch.device("cpu"))
    batch, scale = make_batch(problem), sample_scale(problem)
    model = UnfoldedThresholding(UnfoldedConfig("ista", max(iterations), config.lam, config.spec,
                                                wavelet_levels=config.wavelet_levels))
    weight = config.lam * batch.lam_factor
    scores, seconds, clock = {}, 0.0, time.perf_counter()
    for t, (x, penalty) in enumerate(model.iterates(problem.physics, batch.y, problem.x_shape, batch.sqnorm,
                                                    weight), 1):
        if t in iterations:
            seconds += time.perf_counter() - clock
            image = problem.to_output(x * per_sample(scale, x))["reconstruction"]
            value = float(objective(problem.physics, batch.y, x, penalty, weight).mean())
            scores[t] = {**quality(image, problem.ground_truth), "objective": value, "seconds": seconds}
            clock = time.perf_counter()
    return scores


def imaging_part(threads: int, out: Path) -> None:
    """The shipped MRI weights against adjoint, cgls and plain wavelet ISTA, end to end from the CLI."""
    weights = WEIGHTS_DIR / "unfolded-ista-mri-cartesian.safetensors"
    config = load_unfolded(weights).config
    layers = config.layers
    (ROOT / IMAGING_DIR).mkdir(parents=True, exist_ok=True)
    eval_file = IMAGING_DIR / "eval.h5"
    commands = [recon("simulate", *MRI_EVAL, "--out", str(eval_file), "--overwrite", threads=threads)]
    rows = []
    for method in ("adjoint", "cgls", "unfolded-ista"):
        output = IMAGING_DIR / f"{method}.h5"
        commands.append(recon("reconstruct", str(eval_file), "--method", method, "--slices", EVAL_SLICES,
                              "--out", str(output), "--overwrite", threads=threads))
        with h5py.File(ROOT / output) as f:
            history = f["history/objective"][:] if "history/objective" in f else [float("nan")]
            count = json.loads(f.attrs["params"]).get("iterations") or len(history)
            rows.append((method, count, float(f.attrs["psnr"]), float(f.attrs["ssim"]), float(history[-1]),
                         float(f.attrs["elapsed_s"])))
    for count, score in plain_wavelet_ista(ROOT / eval_file, config, (layers, 10 * layers, 100 * layers)).items():
        rows.append(("wavelet ISTA (plain)", count, score["psnr"], score["ssim"], score["objective"],
                     score["seconds"]))
    print(f"\nMRI, 4 coils, 4x Poisson disc, 1% noise; Shepp-Logan 64^3 slices {EVAL_SLICES} (never trained on); "
          f"lam {config.lam}\n| method | iterations | PSNR (dB) | SSIM | objective | time (s) |\n"
          "|---|---|---|---|---|---|")
    for name, count, psnr, ssim, value, seconds in rows:
        print(f"| {name} | {count} | {psnr:.2f} | {ssim:.3f} | {value:.4f} | {seconds:.2f} |")
    unfolded = rows[2][2]
    ista_10 = next(r[2] for r in rows if r[0].startswith("wavelet") and r[1] == 10 * layers)
    checks = [(f"unfolded ISTA ({layers} layers) beats adjoint and cgls", unfolded > max(rows[0][2], rows[1][2])),
              (f"unfolded ISTA ({layers} layers) reaches the PSNR of plain wavelet ISTA after {10 * layers}",
               unfolded >= ista_10)]
    for claim, holds in checks:
        print(f"- [{'holds' if holds else 'DOES NOT HOLD'}] {claim}")
    out.write_text(json.dumps({"commands": commands, "weights": str(weights.relative_to(ROOT)), "lam": config.lam,
                               "layers": layers, "slices": EVAL_SLICES, "rows": rows,
                               "checks": [{"claim": c, "holds": h} for c, h in checks]}, indent=1))
    print(f"wrote {out}")


def sparse_part(args: argparse.Namespace) -> None:
    """The paper's comparisons on sparse vectors, the findings and the mismatch case."""
    networks = train_networks(args.layers, args.steps, args.lr, args.batch)
    results = evaluate_all(networks, test_batches(args.test_batches, 100, seed=123), args.layers, with_fista=True)
    rows = table_rows(results, args.layers)
    print_table(f"Test (matched: k=12, 10 dB), T = {args.layers}", rows)
    checks = findings(results, args.layers)
    print("\nPaper's findings:")
    for claim, holds, figures in checks:
        print(f"- [{'holds' if holds else 'DOES NOT HOLD'}] {claim}: {figures}")

    mismatch = {}
    for case, changes in MISMATCH.items():
        case_results = evaluate_all(networks, test_batches(args.test_batches, 100, seed=456, **changes), args.layers,
                                    with_fista=False)
        mismatch[case] = table_rows(case_results, args.layers)
        print_table(f"Mismatch: trained at k=12, 10 dB; tested at {case}", mismatch[case])

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": shlex.join([Path(sys.executable).name, *sys.argv]), "setup": SETUP, "lam": LAM,
        "layers": args.layers, "steps": args.steps, "lr": args.lr, "batch": args.batch,
        "test_signals": 100 * args.test_batches, "table": rows, "mismatch": mismatch,
        "findings": [{"claim": c, "holds": h, "figures": f} for c, h, f in checks],
        "step_sizes_times_L": {name: torch.exp(m.log_step.detach()).tolist() for name, m in networks.items()},
        "curves": results,
    }, indent=1))
    plot(results, args.layers, args.png)
    print(f"\nwrote {args.json} and {args.png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("sparse", "imaging", "all"), default="all")
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--batch", type=int, default=100, help="signals per training batch (one matrix each)")
    parser.add_argument("--test-batches", type=int, default=10, help="test batches of 100 signals")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=ROOT / "bench_results" / "unfolded_study.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "images" / "unfolded_study.png")
    parser.add_argument("--imaging-json", type=Path, default=ROOT / "bench_results" / "unfolded_imaging.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("sparse", "all"):
        sparse_part(args)
    if args.part in ("imaging", "all"):
        imaging_part(args.threads, args.imaging_json)


if __name__ == "__main__":
    main()
