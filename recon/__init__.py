"""recon: reconstruction of images and volumes from indirect measurements stored in HDF5."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recon")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
