"""How the napari plugin copes with a big volume: open time, bytes read, and slice-step latency.

    xvfb-run -a .venv/bin/python scripts/bench_viewer.py [--size 512]

Writes a SIZE^3 float32 reconstruction (gzip, chunks of one slice), opens it in a real viewer through the
recon reader and measures: the time until the first slice is drawn, the bytes the process read (Linux
``rchar``, page-cache hits included) against the file's size, and the time to step to other slices.
Prints a table and writes bench_results/viewer.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recon.io.reconstruction import write_reconstruction


def bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io (Linux only)")


def write_volume(path: Path, n: int) -> None:
    z, y, x = np.ogrid[:n, :n, :n]
    volume = (np.sin(x / 17.0) * np.cos(y / 23.0) + z / n).astype(np.float32)
    volume += np.random.default_rng(0).standard_normal(volume.shape, dtype=np.float32) * 0.05
    write_reconstruction(path, volume, attrs={"method": "tv", "params": {}, "source": "synthetic",
                                              "command": "bench_viewer", "device": "cpu", "elapsed_s": 0.0,
                                              "seed": 0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20, help="slice steps to time")
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    with tempfile.TemporaryDirectory() as tmp:
        path, warm_up = Path(tmp) / "volume.h5", Path(tmp) / "warm_up.h5"
        write_volume(path, args.size)
        write_volume(warm_up, 16)
        size = path.stat().st_size
        viewer = napari.Viewer(show=True)
        app = QApplication.instance()
        viewer.open(str(warm_up), plugin="recon")  # first use imports the reader's modules: not counted
        viewer.layers.clear()
        app.processEvents()

        before, start = bytes_read(), time.perf_counter()
        (layer,) = viewer.open(str(path), plugin="recon")
        app.processEvents()
        open_s, open_bytes = time.perf_counter() - start, bytes_read() - before

        step_times = []
        for z in np.linspace(0, args.size - 1, args.steps).astype(int):
            start = time.perf_counter()
            viewer.dims.set_current_step(0, int(z))
            app.processEvents()
            step_times.append(time.perf_counter() - start)
        viewer.close()

    result = {"size": args.size, "file_mb": size / 1e6, "open_s": open_s, "open_read_mb": open_bytes / 1e6,
              "open_read_percent": 100 * open_bytes / size, "step_median_ms": 1e3 * float(np.median(step_times)),
              "step_max_ms": 1e3 * float(np.max(step_times)), "shape": list(layer.data.shape)}
    print("| volume | file (MB) | open (s) | read on open (MB, % of file) | slice step median / max (ms) |")
    print("|---|---|---|---|---|")
    print(f"| {args.size}^3 float32 | {result['file_mb']:.0f} | {open_s:.2f} | "
          f"{result['open_read_mb']:.2f} ({result['open_read_percent']:.2f}%) | "
          f"{result['step_median_ms']:.0f} / {result['step_max_ms']:.0f} |")
    out = Path("bench_results")
    out.mkdir(exist_ok=True)
    (out / "viewer.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
