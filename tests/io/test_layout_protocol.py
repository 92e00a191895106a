"""The layout registry: how recon opens any measurement, and the voxel sizes volumes bring with them."""

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
from make_files import write_valid_file
from pydicom.data import get_testdata_file

from recon.errors import UserError
from recon.io.layouts import LAYOUTS, detect_layout, open_measurement, parse_read_options, role
from recon.io.measurement import MeasurementFile
from recon.io.specs import bind_shapes, load_spec
from recon.io.volumes import load_volume_and_spacing


def test_every_layout_follows_the_protocol():
    assert {"lodopab", "dxchange", "nxtomo"} <= set(LAYOUTS)
    for name, module in LAYOUTS.items():
        assert module.NAME == name and load_spec(module.SPEC).id == module.SPEC
        assert callable(module.detect) and callable(module.open)


def test_recon_files_open_as_measurement_files_and_take_no_reader_options(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "m.h5")
    assert detect_layout(path) == "recon" and role(path) == ("recon", "measurement")
    with open_measurement(path) as m:
        assert isinstance(m, MeasurementFile) and m.layout == "recon"
        assert m.provenance == {"layout": "recon", "sources": [str(path)]}
    with pytest.raises(UserError, match="--read center=... applies to files in a foreign layout"):
        open_measurement(path, center="auto")


def test_a_file_nobody_recognises_says_so_and_how_to_convert_it(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros((4, 4))
    assert detect_layout(plain) is None and role(plain) == (None, "unknown")
    with pytest.raises(UserError, match=r"plain.h5: recon_spec: root attribute missing, and no layout recon reads "
                                        r"\(lodopab, dxchange, nxtomo.*\) recognises its content; fix: convert it "
                                        r"with `recon import`"):
        open_measurement(plain)
    with pytest.raises(UserError, match="file not found"):
        open_measurement(tmp_path / "missing.h5")


def test_read_options_parse():
    assert parse_read_options(["center=auto", "rings = sorting"]) == {"center": "auto", "rings": "sorting"}
    assert parse_read_options(None) == {}
    with pytest.raises(UserError, match="--read 'center' is not key=value"):
        parse_read_options(["center"])


def test_a_mapping_that_breaks_its_spec_is_a_bug():
    spec = load_spec("ct-parallel/1")
    dims, axes = bind_shapes(spec, {"sinogram": (3, 10, 20), "angles": (10,)}, {"image_shape": [3, 16, 16]})
    assert dims == {"nz": 3, "n_views": 10, "n_det": 20, "ny": 16, "nx": 16} and axes["sinogram"][0] == "nz"
    with pytest.raises(ValueError, match="angles: shape \\(9,\\) gives n_views=9"):
        bind_shapes(spec, {"sinogram": (3, 10, 20), "angles": (9,)}, {"image_shape": [3, 16, 16]})


def test_voxel_sizes_come_with_nifti_and_dicom_volumes(tmp_path):
    image = nib.Nifti1Image(np.zeros((8, 6, 4), np.float32), np.diag([0.8, 0.9, 5.0, 1.0]))
    image.header.set_xyzt_units("mm")
    nib.save(image, tmp_path / "v.nii.gz")
    volume, spacing = load_volume_and_spacing(tmp_path / "v.nii.gz")
    assert volume.shape == (4, 6, 8) and spacing.sizes == pytest.approx((5.0, 0.9, 0.8)) and spacing.unit == "mm"
    folder = tmp_path / "series"
    folder.mkdir()
    for k, z in enumerate((10.0, 12.5, 15.0)):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.ImagePositionPatient = [0, 0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 5.0  # thicker than the spacing: the positions win
        ds.save_as(folder / f"s{k}.dcm")
    volume, spacing = load_volume_and_spacing(folder)
    assert volume.shape == (3, 128, 128) and spacing.sizes == pytest.approx((2.5, 0.661468, 0.661468))
    assert load_volume_and_spacing(get_testdata_file("CT_small.dcm"))[1].sizes == pytest.approx((0.661468,) * 2)
    np.save(tmp_path / "v.npy", np.zeros((4, 4)))
    assert load_volume_and_spacing(tmp_path / "v.npy")[1] is None
