"""scripts/gpu_recipe.py end to end on the CPU with tiny sizes (--tiny --device cpu): it trains the six priors with
the accelerator options (time budget, bf16/TF32, a patch bank), writes weights and cards that load, benchmarks them
against the shipped weights through scripts/bench_learned_priors.py and says which are better."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from recon.models.denoisers import load_denoiser
from recon.models.diffusion import load_diffusion
from recon.models.lpn import load_lpn
from recon.phantoms import random_ellipses

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_recipe  # noqa: E402

NAMES = ("diffusion-ct", "diffusion-mri", "lpn-ct", "lpn-mri", "drunet-ct", "drunet-mri")


def tiny_pack(folder: Path) -> Path:
    """The files of scripts/training_data.py, small: ellipse phantoms standing in for MNI152 and CT_small."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    mni = np.stack([random_ellipses((40, 40), rng) for _ in range(10)])
    np.save(folder / "mni152.npy", np.round(mni * 255).astype(np.uint8))
    np.save(folder / "mni152-sparse.npy", np.round(mni[::4] * 255).astype(np.uint8))
    np.save(folder / "ct-small.npy", random_ellipses((48, 48), rng)[None])
    return folder


@pytest.mark.slow
def test_the_tiny_recipe_trains_six_priors_benchmarks_them_and_judges_them(tmp_path, capsys):
    out = tmp_path / "gpu"
    pack = tiny_pack(tmp_path / "pack")
    report = gpu_recipe.main(["--tiny", "--device", "cpu", "--out", str(out), "--data", str(pack), "--minutes", "3",
                              "--bench-minutes", "1"])
    for name in NAMES:
        card = json.loads((out / f"{name}.json").read_text())
        assert card["speed"]["bank"] == 8 and card["speed"]["minutes"] > 0 and card["optimiser_steps"] >= 1
        assert card["speed"]["precision"] == ("tf32" if name.startswith("lpn") else "bf16")
        assert card["script"].startswith("python scripts/gpu_recipe.py") and "--tiny" in card["script"]
    assert load_diffusion(out / "diffusion-mri.safetensors")[1].mult == (1, 2)
    assert json.loads((out / "diffusion-mri.json").read_text())["init"] == str(out / "diffusion-ct.safetensors")
    assert load_lpn(out / "lpn-mri.safetensors").config.channels == 2
    assert load_denoiser(out / "drunet-ct.safetensors")[1].nc == (4, 8, 16, 16)
    assert [stage["name"] for stage in report["stages"]] == list(NAMES)

    rows = json.loads((out / "bench.json").read_text())
    shipped = {r["method"] for r in rows if r["label"] == "shipped"}
    new = {r["method"]: r for r in rows if r["label"] == "new"}
    assert shipped == {"fbp", "tv", "pnp-admm", "dds", "lpn"} and set(new) == {"pnp-admm", "dds", "lpn"}
    assert all(Path(r["settings"]["weights"]).parent == out for r in new.values())
    assert all(np.isfinite(r["psnr"]) for r in rows)
    assert set(report["verdicts"]) == {"diffusion-ct", "drunet-ct", "lpn-ct"}  # the shepp-ct16 case is CT
    for name, verdict in report["verdicts"].items():
        method = {"diffusion": "dds", "drunet": "pnp-admm", "lpn": "lpn"}[name.split("-")[0]]
        gain = new[method]["psnr"] - next(r["psnr"] for r in rows if r["label"] == "shipped" and r["method"] == method)
        assert verdict["mean_gain"] == pytest.approx(gain, abs=0.01)
    printed = capsys.readouterr().out
    assert "copy the better weights: cp" in printed or "no new weights are better" in printed


def test_new_weights_are_better_only_with_a_mean_gain_and_no_row_much_worse(tmp_path):
    def row(case, label, psnr, weights=None):
        return {"case": case, "method": "dds", "label": label, "psnr": psnr,
                "settings": {"weights": f"{tmp_path}/{weights}.safetensors"} if weights else {}}

    rows = [row("a", "shipped", 20.0), row("b", "shipped", 30.0), row("a", "new", 21.0, "diffusion-ct"),
            row("b", "new", 29.7, "diffusion-ct")]
    verdict = gpu_recipe.verdicts(rows, tmp_path)["diffusion-ct"]
    assert verdict["gains"] == {"a": 1.0, "b": -0.3} and verdict["mean_gain"] == 0.35 and not verdict["better"]
    rows[-1]["psnr"] = 29.9
    assert gpu_recipe.verdicts(rows, tmp_path)["diffusion-ct"]["better"]


def test_a_measurement_file_the_benchmark_cannot_open_stops_the_recipe_before_training(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "broken.h5").write_bytes(b"not HDF5")
    out = tmp_path / "gpu"
    with pytest.raises(SystemExit, match=r"broken\.h5: the benchmark cannot open it here"):
        gpu_recipe.main(["--device", "cpu", "--out", str(out), "--data", str(tiny_pack(tmp_path / "pack")),
                         "--bench-files", str(files)])
    assert not out.exists()
    with pytest.raises(SystemExit, match="no measurement files"):
        gpu_recipe.main(["--device", "cpu", "--out", str(out), "--data", str(tmp_path / "pack"),
                         "--bench-files", str(tmp_path)])
