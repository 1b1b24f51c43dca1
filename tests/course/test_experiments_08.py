"""What notebook 08 says about its experiments holds, checked on the references.

The notebook's runs take a second or two each, so these are the same runs; the assertions use margins rather
than the printed digits, which may move in the last place with the BLAS.
"""

import math

import numpy as np
import pytest

from nnlab import practice as P
from nnlab.experiments import practice as exp

LRS = {"too low": 1e-3, "right": 0.1, "too high": 3.0}


def test_initial_loss_is_log_c_with_small_weights_and_far_above_with_large():
    counts = [2, 10, 100]
    losses = exp.initial_losses(counts, {"small": 0.01, "large": 1.0})
    np.testing.assert_allclose(losses["small"], np.log(counts), rtol=2e-3)
    assert np.all(losses["large"] > 10 * np.log(counts))


def test_twenty_samples_are_overfit_and_the_shuffled_labels_bug_is_not():
    runs = exp.overfit_tiny(n=20, num_epochs=200)
    good, bug = runs["correct"], runs["labels shuffled apart from images"]
    assert good["train_loss"][-1] < 0.01 and good["train_acc"][-1] == 1.0
    assert bug["train_loss"][-1] > 1.5 and bug["train_acc"][-1] < 0.5


def test_random_labels_are_memorized_but_do_not_generalize():
    runs = exp.random_labels(n=200, num_epochs=300)
    true, rand = runs["true labels"], runs["random labels"]
    assert true["train_acc"][-1] == 1.0 and rand["train_acc"][-1] > 0.98
    assert true["val_acc"][-1] > 0.88 and true["test_acc"] > 0.88
    assert rand["val_acc"][-1] < 0.16 and rand["test_acc"] < 0.16


def test_learning_rates_too_low_too_high_and_right():
    runs = exp.learning_rates(LRS, num_epochs=20)
    low, right, high = (runs[k] for k in LRS)
    assert low["train_loss"][-1] > 2.0 and low["val_acc"][-1] < 0.3          # crawls
    assert right["train_loss"][-1] < 0.2 and right["val_acc"][-1] > 0.93     # learns
    assert abs(high["train_loss"][-1] - math.log(10)) < 0.3 and high["val_acc"][-1] < 0.15  # stopped learning


def test_update_ratio_flags_the_learning_rate_and_dead_or_saturated_units():
    relu = exp.monitor_training(P.update_ratio, LRS, num_epochs=15, activation="relu")
    tanh = exp.monitor_training(P.update_ratio, LRS, num_epochs=15, activation="tanh")
    assert 1e-3 < np.median(relu["right"]["ratio"]) < 5e-3 and 1e-3 < np.median(tanh["right"]["ratio"]) < 5e-3
    assert np.median(relu["too low"]["ratio"]) < 1e-4
    assert relu["too high"]["ratio"][:10].max() > 0.3                           # huge first steps
    assert relu["too high"]["dead"][-1] > 0.9 and relu["right"]["dead"][-1] < 0.15
    assert tanh["too high"]["saturated"][-1] > 0.9 and tanh["right"]["saturated"][-1] == 0.0


def test_first_layer_weights_are_clean_when_well_trained_and_noisy_when_not():
    nets = exp.first_layer_weights({"good": dict(lam=1.0), "bad": dict(n_train=50, init_scale=0.5)})
    good, bad = nets["good"], nets["bad"]
    assert good["border"] < 1e-4 < 0.05 < good["inner"]                  # blank pixels: 0, others: not
    assert abs(bad["border"] - bad["inner"]) < 0.1 * bad["inner"]          # noise everywhere
    assert good["val_acc"] > 0.93 > 0.8 > bad["val_acc"]
    assert good["empty_units"] > 0 == bad["empty_units"]


def test_random_search_beats_the_grid_when_one_hyperparameter_matters():
    space = {"learning_rate": (1e-3, 3.0, "log"), "lam": (1e-4, 1e-1, "log")}
    search = exp.search_comparison(P.random_search, space, n_trials=9)
    best = {k: search[k][0][1] for k in ("grid", "random", "fine")}
    assert len({round(c["learning_rate"], 9) for c, _ in search["grid"]}) == 3
    assert len({round(c["learning_rate"], 9) for c, _ in search["random"]}) == 9
    assert best["random"] > best["grid"] + 0.1 and best["fine"] >= best["random"] - 0.01
    low, high, _ = search["fine_space"]["learning_rate"]
    assert 1e-3 < low < high < 3.0 and high / low < 3.0e3 / 10


def test_ensemble_beats_its_average_member_but_not_by_two_points_over_the_best():
    ensembles = exp.ensemble_vs_members(P.ensemble_predict, n_members=5, n_train=200, num_epochs=30, seeds=(0, 1, 2))
    assert all(e["gain_over_mean"] > 0 for e in ensembles)
    assert all(-0.005 < e["gain_over_best"] < 0.02 for e in ensembles)


def test_reweighting_helps_the_rare_classes_of_an_imbalanced_split():
    data = exp.imbalanced_split(keep=0.05)
    counts = np.bincount(data["y_train"], minlength=10)
    assert counts[:5].min() > 100 and counts[5:].max() < 10
    runs = exp.imbalanced(data, num_epochs=40)
    plain, rew = runs["plain"], runs["reweighted"]
    assert plain["per_class"][:5].min() > 0.9 and plain["per_class"][5:].max() < 0.9
    assert rew["test_acc"] > plain["test_acc"] + 0.03
    assert rew["per_class"][5:8].mean() > plain["per_class"][5:8].mean() + 0.1
    assert np.array_equal(plain["cm"].sum(axis=1), np.bincount(data["y_test"], minlength=10))


@pytest.mark.parametrize("n_trials", [9, 4])
def test_grid_and_random_search_get_the_same_budget(n_trials):
    space = {"learning_rate": (1e-2, 1.0, "log"), "lam": (1e-4, 1e-1, "log")}
    search = exp.search_comparison(P.random_search, space, n_trials=n_trials, train_fn=lambda c: c["learning_rate"])
    assert len(search["grid"]) == len(search["random"]) == len(search["fine"]) == n_trials
