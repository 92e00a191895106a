"""Slab merging copies each slab's compressed slices as they are where the layouts match, and decodes otherwise."""

import zlib

import h5py
import numpy as np
import pytest

from recon.batch.slabs import copy_slices

PLANE = (12, 10)


def recon_layout(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """A dataset as recon writes volumes: one chunk per slice, gzip 4 with shuffle."""
    return group.create_dataset(name, data=data, chunks=(1, *data.shape[1:]), compression="gzip",
                                compression_opts=4, shuffle=True)


@pytest.mark.parametrize("layout", ["recon", "contiguous", "other filters", "slices not all written"])
def test_slices_land_at_their_offset_whatever_the_source_layout(tmp_path, layout):
    rng = np.random.default_rng(0)
    before, slab = rng.random((3, *PLANE), np.float32), rng.random((4, *PLANE), np.float32)
    with h5py.File(tmp_path / "slab.h5", "w") as source_file, h5py.File(tmp_path / "out.h5", "w") as out_file:
        if layout == "recon":  # its chunks compressed at level 1, so that a copy differs from a re-compression
            source = recon_layout(source_file, "x", np.zeros_like(slab))
            for index, plane in enumerate(slab):
                shuffled = plane.view(np.uint8).reshape(-1, 4).T.tobytes()  # HDF5's shuffle filter
                source.id.write_direct_chunk((index, 0, 0), zlib.compress(shuffled, 1))
        elif layout == "contiguous":
            source = source_file.create_dataset("x", data=slab)
        elif layout == "other filters":
            source = source_file.create_dataset("x", data=slab, chunks=(1, *PLANE), compression="gzip",
                                                compression_opts=9)
        else:  # a chunk never written reads as the fill value and has nothing to copy
            source = source_file.create_dataset("x", shape=slab.shape, dtype=slab.dtype, chunks=(1, *PLANE),
                                                compression="gzip", compression_opts=4, shuffle=True)
            source[:2] = slab[:2]
            slab[2:] = 0
        target = out_file.create_dataset("x", shape=(7, *PLANE), dtype=np.float32, chunks=(1, *PLANE),
                                         compression="gzip", compression_opts=4, shuffle=True)
        target[:3] = before
        copy_slices(source, target, 3)
        np.testing.assert_array_equal(target[:3], before)
        np.testing.assert_array_equal(target[3:], slab)
        if layout == "recon":  # copied as stored, not re-compressed
            for index in range(4):
                assert target.id.read_direct_chunk((3 + index, 0, 0)) == source.id.read_direct_chunk((index, 0, 0))
