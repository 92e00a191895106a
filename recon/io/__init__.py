"""HDF5 read/write and validation against data_specs, and import of volumes (npy, nii, dcm, h5)."""

from recon.io.measurement import MeasurementFile, parse_slice_range, write_measurement
from recon.io.reconstruction import check_output_path, read_reconstruction, write_reconstruction
from recon.io.specs import Report, Spec, describe_file, load_spec, open_validated, spec_names, validate_file
from recon.io.volumes import load_volume

__all__ = [
    "MeasurementFile", "Report", "Spec", "check_output_path", "describe_file", "load_spec", "load_volume",
    "open_validated", "parse_slice_range", "read_reconstruction", "spec_names", "validate_file", "write_measurement",
    "write_reconstruction",
]
