"""Render the README's screenshots of the napari plugin: a real viewer, the real widgets, real runs.

    xvfb-run -a -s '-screen 0 1920x1080x24' .venv/bin/python scripts/screenshots.py --out docs/images

Simulates a 16 x 128 x 128 sparse-view CT (30 views, 1% noise) and a 4x 4-coil MRI of the Shepp-Logan
phantom into a temporary folder, then saves:
  napari_reconstruct.png  the CT sinogram opened, `tv` run from the Reconstruct widget, result shown
  napari_compare.png      fbp, cgls and tv side by side with the ground truth, PSNR/SSIM table
  napari_kspace.png       the MRI measurement as log-magnitude k-space
  napari_3d.png           the tv volume rendered in 3D (maximum intensity projection)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

SIZE = (1800, 1000)


def simulate(folder: Path) -> tuple[Path, Path]:
    volume = shepp_logan_3d(128, 16)
    ct, mri = folder / "phantom_ct.h5", folder / "phantom_mri.h5"
    datasets, attrs = simulate_ct_parallel(volume, views=30, noise_std=0.01, rng=np.random.default_rng(0))
    write_measurement(ct, "ct-parallel/1", datasets, attrs)
    datasets, attrs = simulate_mri_cartesian(volume, coils=4, acceleration=4, noise_std=0.01,
                                             rng=np.random.default_rng(0))
    write_measurement(mri, "mri-cartesian/1", datasets, attrs)
    return ct, mri


def wait_for(widget, app, timeout_s: float = 300) -> None:
    start = time.perf_counter()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("the reconstruction did not finish")
    app.processEvents()


def save(viewer, app, path: Path) -> None:
    for _ in range(5):
        app.processEvents()
        time.sleep(0.05)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    with tempfile.TemporaryDirectory() as tmp:
        ct, mri = simulate(Path(tmp))
        viewer = napari.Viewer(title="recon")
        viewer.window.resize(*SIZE)
        app = QApplication.instance()
        _, reconstruct = viewer.window.add_plugin_dock_widget("recon", "Reconstruct")
        viewer.open(str(ct), plugin="recon")
        for method in ("fbp", "cgls", "tv"):
            reconstruct.method.value = method
            reconstruct.start()
            wait_for(reconstruct, app)
        viewer.layers.selection.active = viewer.layers["phantom_ct [tv]"]
        for layer in viewer.layers:
            layer.visible = layer.name in ("phantom_ct [tv]",)
        viewer.reset_view()
        save(viewer, app, args.out / "napari_reconstruct.png")

        _, compare = viewer.window.add_plugin_dock_widget("recon", "Compare")
        compare.layers.value = [viewer.layers[f"phantom_ct [{m}]"] for m in ("fbp", "cgls", "tv")]
        compare.compare()
        save(viewer, app, args.out / "napari_compare.png")

        viewer.canvas.grid.enabled = False
        viewer.layers["phantom_ct [tv]"].visible = True
        viewer.dims.ndisplay = 3
        for layer in viewer.layers:
            layer.visible = layer.name == "phantom_ct [tv]"
        viewer.layers["phantom_ct [tv]"].rendering = "mip"
        viewer.layers["phantom_ct [tv]"].scale = (4.0, 1.0, 1.0)  # 16 slices shown as a 64-pixel slab
        viewer.reset_view()
        viewer.camera.angles = (10, -35, 60)
        viewer.camera.zoom *= 1.4
        save(viewer, app, args.out / "napari_3d.png")

        viewer.dims.ndisplay = 2
        viewer.layers.clear()
        viewer.open(str(mri), plugin="recon")
        viewer.dims.set_current_step(0, 8)
        viewer.reset_view()
        save(viewer, app, args.out / "napari_kspace.png")
        viewer.close()


if __name__ == "__main__":
    main()
