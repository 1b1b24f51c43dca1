"""What notebook 02 says about its experiments holds, checked on the references (the same small runs, a few seconds).

The comparisons of 4.3 and 4.4 are also checked with a second correct implementation of the initializers that
draws its random numbers in another order (other initial weights from the same seeds): the text must hold for
every correct answer, not only for the numbers the reference run printed.
"""

import numpy as np
import pytest

from nnlab import init
from nnlab.experiments import initialization as exp

LOG2 = np.log(2)


def large(fan_in, fan_out, rng):
    return init.random_init(fan_in, fan_out, rng, scale=1.0)


def constant(fan_in, fan_out, rng):
    return np.full((fan_in, fan_out), 0.1)


SCHEMES = {"small": init.random_init, "large": large, "xavier": init.xavier_init, "he": init.he_init}


def _transposed(std):
    # a correct initializer that draws its normals as (fan_out, fan_in): other weights from the same rng
    def init_fn(fan_in, fan_out, rng):
        return std(fan_in, fan_out) * rng.standard_normal((fan_out, fan_in)).T
    return init_fn


OTHER_ORDER = {"small": _transposed(lambda fi, fo: 0.01), "large": _transposed(lambda fi, fo: 1.0),
               "xavier": _transposed(lambda fi, fo: np.sqrt(2 / (fi + fo))),
               "he": _transposed(lambda fi, fo: np.sqrt(2 / fi))}
IMPLEMENTATIONS = {"reference": SCHEMES, "another order": OTHER_ORDER}


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_symmetric_starts_stay_symmetric_and_random_ones_do_not(name):
    # 4.1, over seeds 0, 1, 2 as the notebook runs them
    small_init = IMPLEMENTATIONS[name]["small"]
    by_seed = [exp.symmetry_experiment({"zeros": init.zeros_init, "constant": constant, "small": small_init}, seed=s)
               for s in (0, 1, 2)]
    for sym in by_seed:
        zeros, const, small = sym["zeros"], sym["constant"], sym["small"]
        # "from zeros nothing but the output bias moves (||W1|| stays 0, accuracy 0.50)"
        assert np.all(zeros["spread"] == 0) and np.all(zeros["weight_norm"] == 0)
        assert zeros["test_acc"] == 0.5 and np.all(zeros["hidden"] == 0)
        # "identical after 30 epochs in every seed (difference 0.00)", "||W1|| grows from 0.1 sqrt(12 16) = 1.39",
        # "a test accuracy of 0.95 or more in each of the three seeds"
        assert np.all(const["spread"] < 1e-12)
        assert np.allclose(const["hidden"], const["hidden"][:, :1], rtol=0, atol=1e-12)
        assert const["weight_norm"][0, 0] == pytest.approx(0.1 * np.sqrt(12 * 16))
        assert const["weight_norm"][0, -1] > const["weight_norm"][0, 0]
        assert const["test_acc"] >= 0.95
        # "differ from the start (by a few hundredths) and end further apart in 3 of 3 seeds"
        assert 0.02 <= small["spread"][0, 0] <= 0.05 and small["spread"][0, -1] > small["spread"][0, 0]
    # "one of the three seeds is still near chance (the lowest train accuracy printed above)"
    train = sorted(sym["small"]["train_acc"] for sym in by_seed)
    assert train[0] < 0.55 and train[1] > 0.9, train


@pytest.fixture(scope="module", params=list(IMPLEMENTATIONS))
def activation_draws(request):
    schemes = IMPLEMENTATIONS[request.param]
    return request.param, [{act: exp.activation_statistics(schemes, act, seed=s) for act in ("tanh", "relu")}
                           for s in (0, 1, 2)]


def test_activations_vanish_explode_or_stay_healthy(activation_draws):
    # 4.2, every statement over the three draws (seeds 0, 1, 2) the notebook prints
    name, draws = activation_draws
    for d in draws:
        tanh, relu = d["tanh"], d["relu"]
        # tanh: "N(0, 0.01²) vanishes (std about 0.16 in layer 1, about 1e-8 in layer 10)"
        assert tanh["small"]["std"][0] == pytest.approx(0.16, abs=0.01) and 5e-9 < tanh["small"]["std"][-1] < 2e-8
        # "N(0, 1) saturates (86-87% of the activations beyond ±0.99 in layers 1 and 10)"
        assert all(0.855 <= tanh["large"]["saturated"][l] < 0.875 for l in (0, -1)), name
        # "Xavier shrinks slowly (about 0.63 -> 0.22)", shrinking at every layer; "He holds better (0.72 -> 0.55)"
        assert tanh["xavier"]["std"][0] == pytest.approx(0.63, abs=0.01)
        assert tanh["xavier"]["std"][-1] == pytest.approx(0.225, abs=0.01)
        assert np.all(np.diff(tanh["xavier"]["std"]) < 0)
        assert tanh["he"]["std"][0] == pytest.approx(0.72, abs=0.01)
        assert tanh["he"]["std"][-1] == pytest.approx(0.555, abs=0.01)
        assert tanh["he"]["std"][-1] > 2 * tanh["xavier"]["std"][-1]
        # relu: "N(0, 0.01²) vanishes (a few 1e-10), N(0, 1) explodes (a few 1e10)"
        assert 1e-10 < relu["small"]["std"][-1] < 1e-9
        assert 1e10 < relu["large"]["std"][-1] < 1e11
        # "Xavier loses about a factor sqrt(2) per layer (about 0.58 -> 0.02 to 0.04)"
        per_layer = (relu["xavier"]["std"][-1] / relu["xavier"]["std"][0]) ** (1 / 9)
        assert abs(per_layer - 1 / np.sqrt(2)) < 0.05, (name, per_layer)
        assert relu["xavier"]["std"][0] == pytest.approx(0.58, abs=0.01)
        assert 0.02 <= relu["xavier"]["std"][-1] <= 0.045
        # "only He stays healthy (about 0.82 in layer 1, of the same order in layer 10)"
        assert relu["he"]["std"][0] == pytest.approx(0.82, abs=0.015)
        assert 0.5 < relu["he"]["std"][-1] < 2


@pytest.fixture(scope="module")
def runs():
    return exp.compare_inits({"zeros": init.zeros_init, **SCHEMES}, seeds=(0, 1, 2, 3))


def test_zeros_never_learn_and_tiny_weights_plateau_first(runs):
    zeros, small = runs["zeros"], runs["small"]
    assert np.all(np.abs(zeros["train_loss"] - LOG2) < 1e-3) and np.all(zeros["test_acc"] == 0.5)
    loss = small["train_loss"].mean(axis=0)
    assert np.all(np.abs(loss[:11] - LOG2) < 0.03)          # the plateau: about 10 epochs at log 2
    assert loss[10] == pytest.approx(0.677, abs=0.01)
    assert loss[-1] < 0.1                                  # then it learns
    test = {name: r["test_acc"][:, -1].mean() for name, r in runs.items()}
    assert test["small"] == pytest.approx(0.958, abs=0.01)


@pytest.fixture(scope="module", params=list(IMPLEMENTATIONS))
def both_runs(request, runs):
    if request.param == "reference":
        return request.param, runs
    return request.param, exp.compare_inits({"zeros": init.zeros_init, **OTHER_ORDER}, seeds=(0, 1, 2, 3))


def test_tiny_weights_end_level_with_xavier_and_he_and_large_ones_worst(both_runs):
    name, runs = both_runs
    final = {k: r["test_acc"][:, -1] for k, r in runs.items()}
    means = np.array([final[k].mean() for k in ("small", "xavier", "he")])
    # "ending about as accurate on the test set as Xavier and He: their means lie within a few points of each other
    # ... which of the three is ahead changes from seed to seed"
    assert means.max() - means.min() <= 0.03, (name, means)
    leader = np.argmax(np.stack([final[k] for k in ("small", "xavier", "he")]), axis=0)
    assert len(set(leader)) > 1, (name, leader)
    # "N(0, 1) starts far above log 2 (several times it), keeps about 60% of its tanh units saturated, fits the
    # training set perfectly and generalizes worst, several points below the other three on average"
    big = runs["large"]
    assert big["train_loss"][:, 0].mean() > 3 * LOG2, name
    assert np.all((big["saturated_final"] > 0.55) & (big["saturated_final"] < 0.65)), name
    assert big["train_acc"][:, -1].mean() == 1.0, name
    assert final["large"].mean() < means.min() - 0.03, name
    # "N(0, 0.01²) sits on the log 2 plateau for about 10 epochs and then learns"
    loss = runs["small"]["train_loss"].mean(axis=0)
    assert np.all(np.abs(loss[:11] - LOG2) < 0.03) and loss[-1] < 0.1, name


def test_large_weights_saturate_fit_and_generalize_worse(runs):
    big = runs["large"]
    assert big["train_loss"][:, 0].mean() == pytest.approx(3.87, abs=0.05)
    assert np.all((big["saturated_init"] > 0.55) & (big["saturated_init"] < 0.63))
    assert np.all((big["saturated_final"] > 0.55) & (big["saturated_final"] < 0.63))
    assert big["train_acc"][:, -1].mean() == 1.0 and big["train_loss"][:, -1].mean() < 0.006
    test = big["test_acc"][:, -1]
    assert test.mean() == pytest.approx(0.892, abs=0.01) and test.min() >= 0.86 and test.max() <= 0.95
    assert runs["xavier"]["test_acc"][:, -1].mean() == pytest.approx(0.948, abs=0.01)
    assert runs["he"]["test_acc"][:, -1].mean() == pytest.approx(0.935, abs=0.01)
    assert test.mean() < min(runs[k]["test_acc"][:, -1].mean() for k in ("small", "xavier", "he")) - 0.03
    assert np.all(runs["xavier"]["saturated_final"] < 0.01)


def test_which_layer_converges_faster_depends_on_the_measure():
    ch = exp.layer_weight_changes(init.he_init)
    rel = ch["relative_change"].mean(axis=(0, 2))
    assert rel[3] > 3 * rel[:3].max() and rel[0] < rel[1:].min()   # output fastest, first slowest
    assert rel[1] > rel[2]                                          # but the middle layers out of order
    assert np.allclose(rel, [0.002, 0.0037, 0.0031, 0.0134], atol=0.0005)
    assert ch["relative_change"][:, 3, 0].mean() == pytest.approx(0.13, abs=0.01)
    rem10 = ch["remaining"][:, :, 10].mean(axis=0)
    assert np.allclose(rem10, [0.47, 0.38, 0.32, 0.33], atol=0.015)
    assert rem10[0] == rem10.max()                                  # the first layer lags
    assert np.all(ch["remaining"][:, :, 10].argmax(axis=1) == 0)    # in every seed
    absolute = ch["absolute_change"].mean(axis=(0, 2))
    assert absolute[3] < absolute[1]                               # small norm, not big steps


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_the_layer_order_holds_in_every_seed_and_the_last_two_are_level(name):
    ch = exp.layer_weight_changes(IMPLEMENTATIONS[name]["he"])
    per_seed = ch["relative_change"].mean(axis=2)                     # (seeds, layers)
    # "the output layer changes fastest ... and the first layer slowest, but the middle layers are out of order
    # (W2 changes more than W3, in every seed)"
    assert np.all(per_seed.argmax(axis=1) == 3) and np.all(per_seed.argmin(axis=1) == 0), name
    assert np.all(per_seed[:, 1] > per_seed[:, 2]), name
    # "the first layer lags in every seed ... while W3 and the output layer are furthest along on average, about a
    # third left each"
    rem10 = ch["remaining"][:, :, 10]
    assert np.all(rem10.argmax(axis=1) == 0), name
    mean = rem10.mean(axis=0)
    assert max(mean[2], mean[3]) < min(mean[0], mean[1]), (name, mean)
    assert np.all(np.abs(mean[2:] - 1 / 3) < 0.05) and abs(mean[2] - mean[3]) < 0.03, (name, mean)
    # "its absolute change per epoch is below W2's"
    absolute = ch["absolute_change"].mean(axis=(0, 2))
    assert absolute[3] < absolute[1], name


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_initial_loss_is_log_c_only_when_scores_start_near_zero(name):
    # 4.5, over the class counts and the three draws (seeds 0, 1, 2) the notebook prints
    classes = [2, 3, 5, 10, 20, 50, 100]
    schemes = IMPLEMENTATIONS[name]
    for seed in (0, 1, 2):
        losses = exp.initial_losses({"zeros": init.zeros_init, **schemes}, classes, seed=seed)
        shrunk = exp.initial_losses({"he": schemes["he"]}, classes, seed=seed, last_layer_scale=0.01)["he"]
        excess = {k: v - np.log(classes) for k, v in losses.items()}
        # "zeros, N(0, 0.01²) and He with its output layer scaled by 0.01, all within 0.005 in every draw"
        for near in (excess["zeros"], excess["small"], shrunk - np.log(classes)):
            assert np.all(np.abs(near) < 0.005)
        # "Xavier at most 0.3 above log C, plain He 0.2 to 1.3 above and above Xavier at every class count in
        #  every draw, N(0, 1) more than 100 above"
        assert np.all((excess["xavier"] > 0) & (excess["xavier"] <= 0.3)), (name, seed, excess["xavier"])
        assert np.all((excess["he"] >= 0.2) & (excess["he"] <= 1.3)), (name, seed, excess["he"])
        assert np.all(excess["he"] > excess["xavier"])
        assert np.all(excess["large"] > 100)
