"""Machine-readable HDF5 specs (one YAML file per spec) that recon validates files against."""
