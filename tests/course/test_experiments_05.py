"""What notebook 05 says about its experiments holds, checked on the references.

The runs are the notebook's own or smaller versions of them (a few seconds in all); the assertions use margins
rather than the printed digits, which may move with the BLAS (batch norm at batch size 2 is chaotic: its dev
accuracy moves between 0.3 and 0.6 with the seed or the last bit of a rounding).
"""

import numpy as np
import pytest

from nnlab import normalization as N
from nnlab.experiments import normalization as exp
from nnlab.gradcheck import relative_error
from nnlab.network import FullyConnectedNet

BN = (N.batchnorm_forward, N.batchnorm_backward)
LN = (N.layernorm_forward, N.layernorm_backward)


@pytest.fixture(scope="module")
def data():
    return exp.digits(0)


def test_standardization_turns_a_hopeless_valley_into_a_bowl():
    # "condition 2.0e5; 100 steps leave w2 at 0.004 (optimum 0.51), loss 0.2085 vs 0.0448, ~9e5 steps needed;
    #  standardized: condition 1.54, within 1% after 3 steps."
    runs = exp.standardization_paths(N.standardize_fit, N.standardize_apply, num_steps=100)
    raw, std = runs["raw"], runs["standardized"]
    assert raw["condition"] > 1e5 and std["condition"] < 2
    assert raw["steps"] is None and raw["loss"][-1] > 4 * raw["best_loss"]
    assert abs(raw["path"][-1, 1]) < 0.02 and raw["optimum"][1] > 0.4            # w2 has hardly moved
    assert np.log(0.01) / np.log(raw["slowest_factor"]) > 1e5
    assert std["steps"] is not None and std["steps"] <= 5
    np.testing.assert_allclose(std["path"][-1], std["optimum"], rtol=1e-8)
    # Standardizing is a change of variables: the same predictions at the two optima.
    X, y = raw["X"], raw["y"]
    pred_raw = X @ raw["optimum"][:2] + raw["optimum"][2]
    pred_std = std["X"] @ std["optimum"][:2] + std["optimum"][2]
    np.testing.assert_allclose(pred_raw, pred_std, rtol=1e-8)


def test_batch_norm_trains_over_a_wider_range_of_learning_rates_and_scales(data):
    # "without normalization 1 of 21 runs below 0.5, scale 0.01 stays at 2.30, no run overflows; with batch norm
    #  every scale trains from lr 0.1 to 3; the good learning rates move right as the scale grows."
    lrs, scales = [0.03, 0.3, 3.0], [0.01, 1.0]
    grid = exp.lr_scale_grid({"none": None, "bn": BN}, lrs, scales, data=data)
    none, bn = grid["none"]["loss"], grid["bn"]["loss"]
    assert np.all(np.isfinite(none)) and np.all(np.isfinite(bn))                  # collapse, not divergence
    assert np.all(np.abs(none[0] - np.log(10)) < 0.05)                            # scale 0.01: chance loss
    assert np.sum(none < 0.5) == 0 and np.sum(bn < 0.5) >= 4
    assert np.all(bn[:, 1:] < 0.5)                                                # lr 0.3 and 3 at both scales
    assert bn[0, 0] < 0.5 < 1.0 < bn[1, 0]                                        # lr 0.03: fine at 0.01, not at 1


def test_a_normalized_layer_ignores_the_scale_of_its_weights_and_divides_their_gradient_by_it(data):
    X, y = data["X_train"][:50], data["y_train"][:50]
    net = exp.make_net(BN, hidden=(20, 20), seed=3)
    loss1, grads1 = net.loss(X, y)
    scaled = exp.make_net(BN, hidden=(20, 20), seed=3)
    for k in ("W1", "W2"):
        scaled.params[k] = 10.0 * scaled.params[k]
    loss10, grads10 = scaled.loss(X, y)
    assert loss10 == pytest.approx(loss1, rel=1e-4)  # up to eps, which does not scale
    assert relative_error(grads10["W1"], grads1["W1"] / 10) < 1e-3


def test_batch_norm_fails_at_batch_size_2_where_layer_norm_does_not(data):
    # "batch 2: batch norm 0.507 vs layer norm 0.936 and none 0.760; own batches of 2: 0.150;
    #  from batch 8 batch norm is the best (0.981, 0.972); layer norm about the same at every size."
    runs = exp.batch_size_runs({"none": None, "bn": BN, "ln": LN}, [2, 8, 64], data=data)
    bn, ln, none = runs["bn"], runs["ln"], runs["none"]
    assert bn[2]["val_acc"] < ln[2]["val_acc"] - 0.2 and bn[2]["val_acc"] < none[2]["val_acc"]
    assert bn[2]["val_acc_batch"] < 0.3
    for bs in (8, 64):
        assert bn[bs]["val_acc"] > max(ln[bs]["val_acc"], none[bs]["val_acc"]) and bn[bs]["val_acc"] > 0.96
    accs = [ln[bs]["val_acc"] for bs in (2, 8, 64)]
    assert max(accs) - min(accs) < 0.05 and min(accs) > 0.9


def test_running_averages_lag_early_and_batch_statistics_cannot_predict_one_image(data):
    # "gap 1.26 at step 0, ~30 steps to the noise floor (0.11); test mode 0.351 vs 0.493 at step 4, then they agree;
    #  one image at a time in train mode: 0.100."
    gap = exp.running_average_gap(BN, data=data, num_steps=60)
    assert gap["mean_gap"][0] > 1.0 and gap["var_gap"][0] > 1.0
    assert gap["mean_gap"][10] > 2 * np.sqrt(2 / np.pi / 50)
    assert np.mean(gap["mean_gap"][35:]) < 0.2 and np.mean(gap["var_gap"][35:]) < 0.25
    steps = list(gap["eval_step"])
    early, late = steps.index(4), steps.index(40)
    assert gap["acc_test_mode"][early] < gap["acc_batch_stats"][early] - 0.05
    assert abs(gap["acc_test_mode"][late] - gap["acc_batch_stats"][late]) < 0.03
    assert gap["acc_one_sample"] < 0.15


def test_one_sample_in_train_mode_normalizes_to_beta():
    x = np.array([[3.0, -1.0, 7.0]])
    out, _ = N.batchnorm_forward(x, np.full(3, 2.0), np.array([0.5, 0.0, -1.0]), {"mode": "train"})
    np.testing.assert_allclose(out, [[0.5, 0.0, -1.0]])


def test_network_trains_with_the_references_plugged_in(data):
    for norm in (BN, LN, "batchnorm", "layernorm"):
        net = FullyConnectedNet([64, 30, 10], normalization=norm, rng=np.random.default_rng(0))
        run = exp.train_steps(net, data, num_epochs=1, batch_size=50, lr=0.05)
        assert not run["diverged"] and np.mean(run["loss"][-5:]) < 0.5 * run["loss"][0]
