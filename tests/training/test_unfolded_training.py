"""Training unfolded ISTA/IHT: losses fall, unsupervised DU-ISTA beats ISTA's objective at equal depth, the
straight-through gate trains IHT, runs are deterministic, file training writes a complete card, and CT
weights train from measurements alone."""

import h5py
import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.models.unfolded import UnfoldedConfig, UnfoldedThresholding
from recon.phantoms import shepp_logan_3d
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel, simulate_sparse_linear
from recon.training.unfolded import (
    Schedule,
    batch_loss,
    evaluate,
    synthetic_sparse_sampler,
    train,
    train_from_files,
    write_weights,
)

CPU = torch.device("cpu")


def sampler(seed, k=6, batch=50):
    return synthetic_sparse_sampler(30, 60, k, 10.0, batch, seed, CPU)


def held_out(count=4):
    sample = sampler(99)
    return [sample() for _ in range(count)]


def network(algo="ista", layers=5, lam=0.1):
    return UnfoldedThresholding(UnfoldedConfig(algo, layers, lam, "sparse-linear/1"))


@pytest.mark.parametrize("algo, loss", [("ista", "supervised"), ("iht", "supervised"), ("iht", "unsupervised")])
def test_training_reduces_the_held_out_loss(algo, loss):
    model = network(algo, lam=0.1 if algo == "ista" else 0.05)
    test = held_out()
    with torch.no_grad():
        before = float(np.mean([float(batch_loss(model, b, loss, model.config.lam)) for b in test]))
    train(model, sampler(1), loss, Schedule(steps=200, lr=0.05))
    with torch.no_grad():
        after = float(np.mean([float(batch_loss(model, b, loss, model.config.lam)) for b in test]))
    assert after < 0.9 * before, (before, after)


def test_unsupervised_du_ista_reaches_a_lower_objective_than_ista_at_the_same_depth():
    model = network()
    test = held_out()
    ista = evaluate(model, test)  # untrained: plain ISTA with 5 iterations
    train(model, sampler(1), "unsupervised", Schedule(steps=200, lr=0.05))
    trained = evaluate(model, test)
    ista_10x = evaluate(network(layers=50), test)
    assert trained["objective"] < ista["objective"] - 0.5 * (ista["objective"] - ista_10x["objective"])


def test_straight_through_gate_gives_every_iht_layer_a_gradient_and_keeps_the_forward_pass():
    model = network("iht", lam=0.05)
    batch = sampler(3)()
    batch_loss(model, batch, "unsupervised", 0.05).backward()
    assert torch.all(model.log_step.grad != 0) and torch.isfinite(model.log_step.grad).all()
    args = (batch.problem.physics, batch.y, batch.problem.x_shape, batch.sqnorm, 0.05)
    x_train, count_train = model(*args)
    with torch.no_grad():
        x_plain, count_plain = model(*args)
    assert torch.equal(x_train.detach(), x_plain) and torch.equal(count_train.detach(), count_plain)
    assert torch.equal(count_plain, (x_plain != 0).flatten(1).sum(1).to(count_plain.dtype))


def test_training_is_deterministic():
    weights = []
    for _ in range(2):
        model = network()
        train(model, sampler(5), "unsupervised", Schedule(steps=40, lr=0.05, seed=3))
        weights.append(model.log_step.detach().clone())
    assert torch.equal(*weights)


def sparse_file(path, samples, seed, truth=True):
    datasets, attrs = simulate_sparse_linear(30, 60, 6, 10.0, samples, rng=np.random.default_rng(seed))
    if not truth:
        del datasets["ground_truth"]
    write_measurement(path, "sparse-linear/1", datasets, attrs)
    return path


def test_training_on_files_holds_out_batches_and_reports_them(tmp_path):
    paths = [sparse_file(tmp_path / f"m{i}.h5", 100, i) for i in range(2)]
    model, card = train_from_files(paths, "ista", "supervised", 5, Schedule(steps=100, lr=0.05), batch_size=25,
                                   command="recon train unfolded ...")
    assert card["data"]["batches"] == 6 and card["data"]["held_out_batches"] == 2
    assert card["lambda"] == 0.1 and card["layers"] == 5 and card["spec"] == "sparse-linear/1"
    scores = card["validation"]
    assert scores["trained"]["nmse"] < scores["init"]["nmse"]
    assert len(card["step_sizes_times_L"]) == 5 and card["command"] == "recon train unfolded ..."


def test_file_errors_name_the_file_and_the_fix(tmp_path):
    no_truth = sparse_file(tmp_path / "no_truth.h5", 20, 0, truth=False)
    with pytest.raises(UserError, match="no_truth.h5: ground_truth: has no ground_truth.*--loss unsupervised"):
        train_from_files([no_truth], "ista", "supervised", 3, Schedule(steps=1))
    with pytest.raises(UserError, match="is a sparse-linear/1 file, but the training data are mri-cartesian/1"):
        train_from_files([no_truth], "ista", "unsupervised", 3, Schedule(steps=1), spec="mri-cartesian/1")
    with h5py.File(no_truth, "r+") as f:
        f["y"][0, 0] = np.nan
    with pytest.raises(UserError, match="no_truth.h5: y"):
        train_from_files([no_truth], "ista", "unsupervised", 3, Schedule(steps=1))


def test_ct_weights_train_from_measurements_and_reconstruct(tmp_path):
    datasets, attrs = simulate_ct_parallel(shepp_logan_3d(32, 12), 24, noise_std=0.01, rng=np.random.default_rng(0))
    del datasets["ground_truth"]
    write_measurement(tmp_path / "ct.h5", "ct-parallel/1", datasets, attrs)
    model, card = train_from_files([tmp_path / "ct.h5"], "ista", "unsupervised", 6, Schedule(steps=120, lr=0.1),
                                   batch_size=4)
    assert card["spec"] == "ct-parallel/1" and card["wavelet_levels"] == 4 and card["lambda"] == 1e-3
    assert card["validation"]["trained"]["objective"] < 0.9 * card["validation"]["init"]["objective"]
    write_weights(model, tmp_path / "ct.safetensors", card)
    method = get_method("unfolded-ista")
    with MeasurementFile(tmp_path / "ct.h5") as measurement:
        problem = build_problem(measurement, slice(4, 8), CPU)
    result = method.solve(problem, method.parse_params({"weights": str(tmp_path / "ct.safetensors")}), RunContext())
    assert result.x.shape == (4, 1, 32, 32) and len(result.history["objective"]) == 6
    assert torch.isfinite(result.x).all()
