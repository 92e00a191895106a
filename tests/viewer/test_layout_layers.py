"""The napari reader on files in the field's layouts: claimed by content, shown lazily, preprocessed per slice."""

import re

import numpy as np
import pytest
from layout_files import simulate_scan, write_dxchange, write_lodopab_pair, write_nxtomo

from recon.errors import UserError
from recon.io.layouts import open_measurement
from recon_napari._reader import get_reader
from recon_napari.layers import read_layers


@pytest.fixture(scope="module")
def scan_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layouts")
    scan = simulate_scan(cols=48, rows=3, views=60, center_offset=2.0)
    return write_dxchange(folder / "scan.h5", scan), write_nxtomo(folder / "scan.nx", scan)


def test_raw_projections_open_as_lazy_preprocessed_sinograms(scan_files):
    for path in scan_files:
        assert get_reader(str(path)) is not None
        (data, kwargs, kind), = read_layers(path)
        assert kind == "image" and kwargs["name"] == "scan [sinogram]" and data.shape == (3, 60, 48)
        assert kwargs["axis_labels"] == ("z", "angle", "detector")
        with open_measurement(path, center="auto") as m:
            np.testing.assert_allclose(data[1].compute(), m.read("sinogram", slice(1, 2))[0])
        layout = {".h5": "dxchange", ".nx": "nxtomo"}[path.suffix]
        assert kwargs["metadata"]["recon"]["attrs"]["provenance"]["layout"] == layout


def test_lodopab_ground_truth_is_a_hidden_layer_in_metres(tmp_path):
    observation, truth = write_lodopab_pair(tmp_path, n=1)
    layers = read_layers(observation)
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert names == ["observation_test_000 [sinogram]", "observation_test_000 [ground truth]"]
    _, kwargs, _ = layers[1]
    assert not kwargs["visible"] and kwargs["units"] == "m"
    assert kwargs["scale"] == pytest.approx([0.26 / 362] * 3)
    assert get_reader(str(truth)) is not None  # claimed: opening it tells whose ground truth it is
    with pytest.raises(UserError, match=f"LoDoPaB ground-truth file, not a measurement; fix: reconstruct its "
                                        f"observation file {re.escape(str(observation))}"):
        read_layers(truth)  # the reader shows this line as a notification and opens nothing
