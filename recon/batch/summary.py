"""The end of a batch: a table on the terminal and ``summary.json`` / ``summary.csv`` in the output folder.

``summary.json`` holds ``counts`` (units per status), the run's details, ``paired_ground_truths`` (ground-truth
files paired with their measurement instead of counted), ``skipped_inputs`` (files that are not reconstructed,
each with the reason) and ``units`` (one row per unit: its layout, status, time, PSNR/SSIM, error).
"""

from __future__ import annotations

import csv
import json
from dataclasses import fields
from pathlib import Path

from recon.batch.inputs import SkippedInput
from recon.batch.units import UnitRecord

COLUMNS = [f.name for f in fields(UnitRecord)]


def write_summary(records: list[UnitRecord], out_dir: Path, extra: dict | None = None) -> tuple[Path, Path]:
    """Write both files (each atomically: temp then rename) and return their paths."""
    rows = [record.row() for record in records]
    counts = {status: sum(r["status"] == status for r in rows) for status in ("ok", "failed", "skipped", "not run")}
    json_path, csv_path = out_dir / "summary.json", out_dir / "summary.csv"
    tmp = json_path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps({"counts": counts, **(extra or {}), "units": rows}, indent=2))
    tmp.replace(json_path)
    tmp = csv_path.with_name(".summary.csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(csv_path)
    return json_path, csv_path


def print_table(records: list[UnitRecord], skipped: list[SkippedInput] = ()) -> None:
    """One row per unit: layout, status, time, PSNR/SSIM, error line; then the skipped inputs and why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("unit", "layout", "status", "time (s)", "PSNR (dB)", "SSIM", "error", title="recon batch")
    style = {"ok": "green", "failed": "red", "skipped": "dim", "not run": "yellow"}
    for r in records:
        table.add_row(escape(r.unit), r.layout, f"[{style.get(r.status, '')}]{r.status}", f"{r.time_s:.2f}",
                      "" if r.psnr is None else f"{r.psnr:.2f}", "" if r.ssim is None else f"{r.ssim:.3f}",
                      escape(r.error))
    console = Console(stderr=True, width=160)
    console.print(table)
    if skipped:
        console.print(f"skipped {len(skipped)} input(s):", markup=False)
        for item in skipped:
            console.print(f"  {item.path}: {item.reason}", markup=False, highlight=False)
