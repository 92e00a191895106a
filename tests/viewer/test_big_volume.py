"""Opening a 512^3 reconstruction in the viewer reads one slice, not the volume (bytes counted by the kernel)."""

from pathlib import Path

import numpy as np
import pytest

from recon.io.reconstruction import write_reconstruction

pytestmark = pytest.mark.gui
N = 512


def bytes_read() -> int:
    """Bytes this process has read through read()/pread() so far (Linux ``rchar``: page-cache hits count)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture(scope="module")
def volume_file(tmp_path_factory) -> Path:
    """A 512^3 float32 reconstruction (512 MiB of data, about 420 MB gzip-compressed on disk)."""
    z, y, x = np.ogrid[:N, :N, :N]
    volume = (np.sin(x / 17.0) * np.cos(y / 23.0) + z / N).astype(np.float32)
    volume += np.random.default_rng(0).standard_normal(volume.shape, dtype=np.float32) * 0.05
    path = tmp_path_factory.mktemp("big") / "v512.h5"
    write_reconstruction(path.with_name("small.h5"), volume[:4, :16, :16].copy(), attrs={
        "method": "tv", "params": {}, "source": "synthetic", "command": "test", "device": "cpu", "elapsed_s": 1.0,
        "seed": 0})
    return write_reconstruction(path, volume, attrs={
        "method": "tv", "params": {}, "source": "synthetic", "command": "test", "device": "cpu", "elapsed_s": 1.0,
        "seed": 0})


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.slow
def test_opening_512_cubed_reads_under_5_percent(make_napari_viewer, qtbot, volume_file):
    viewer = make_napari_viewer()
    viewer.open(str(volume_file.with_name("small.h5")), plugin="recon")  # imports the reader's modules
    viewer.layers.clear()
    size = volume_file.stat().st_size
    before = bytes_read()
    (layer,) = viewer.open(str(volume_file), plugin="recon")
    qtbot.wait(200)  # let the canvas draw the first slice
    opened = bytes_read() - before
    assert layer.data.shape == (N, N, N)
    assert opened < 0.05 * size, f"opening read {opened / 1e6:.1f} MB of a {size / 1e6:.0f} MB file"

    before = bytes_read()
    for z in (0, 100, 200):  # moving through the volume reads what is shown, slice by slice
        viewer.dims.set_current_step(0, z)
    qtbot.wait(200)
    stepped = bytes_read() - before
    assert 2 * size / N < stepped < 0.05 * size
