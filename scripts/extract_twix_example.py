"""Write tests/data/twix_gre_2coil.h5: the real raw k-space of twixtools' example ``gre.dat`` in fastMRI's layout.

``gre.dat`` (twixtools 0.24 source distribution, example_data/, MIT licence, (c) 2021 Philipp Ehses) is a Siemens
raw-data file of one 2D gradient-echo slice of a phantom: 160 phase-encoding lines, 2 receive channels, 320 readout
samples (2x oversampled), fully sampled, 200 x 200 mm field of view. This script removes the readout
oversampling (twixtools' ``remove_os``), puts the k-space as fastMRI does, (slices, coils, readout, phase), and stores
the root-sum-of-squares of the fully sampled coil images as ``reconstruction_rss`` (fastMRI's ground truth), with
an ISMRMRD header giving the 160 x 160 grid: 412 kB of data, read by recon's fastmri layout.

Needs twixtools (``pip install twixtools``, not a recon dependency) and the sdist's gre.dat:

    pip download twixtools==0.24 --no-binary :all: --no-deps -d /tmp && tar xzf /tmp/twixtools-0.24.tar.gz -C /tmp
    python scripts/extract_twix_example.py /tmp/twixtools-0.24/example_data/gre.dat
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "twix_gre_2coil.h5"
HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <encoding>
    <encodedSpace><matrixSize><x>{n}</x><y>{n}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{fov}</x><y>{fov}</y><z>{thickness}</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>{n}</x><y>{n}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>{fov}</x><y>{fov}</y><z>{thickness}</z></fieldOfView_mm></reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{last}</maximum><center>{center}</center></kspace_encoding_step_1>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>
"""


def main() -> None:
    import twixtools

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gre", type=Path, help="twixtools-0.24/example_data/gre.dat")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    twix = twixtools.read_twix(str(args.gre), verbose=False)
    image = twixtools.map_twix(twix)[-1]["image"]
    image.flags["remove_os"] = True
    kspace = np.ascontiguousarray(image[:].squeeze().transpose(1, 2, 0))[None].astype(np.complex64)  # (1, C, R, lines)
    lines = kspace.shape[-1]
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    rss = np.sqrt((np.abs(coil_images) ** 2).sum(1)).astype(np.float32)
    geometry = twix[-1]["hdr"]["Phoenix"]["sSliceArray"]["asSlice"][0]
    header = HEADER.format(n=lines, fov=geometry["dReadoutFOV"], thickness=geometry["dThickness"], last=lines - 1,
                           center=lines // 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(args.out, "w") as file:
        file.create_dataset("kspace", data=kspace)
        file.create_dataset("reconstruction_rss", data=rss)
        file["ismrmrd_header"] = header
        file.attrs["acquisition"] = "GRE phantom (twixtools example gre.dat)"
        file.attrs["max"] = float(rss.max())
    print(f"wrote {args.out}: kspace {kspace.shape}, reconstruction_rss {rss.shape}")


if __name__ == "__main__":
    main()
