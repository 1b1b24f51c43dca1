"""nnlab.practice: the references of notebook 08, against PyTorch where it has the same thing."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import practice as P
from nnlab.gradcheck import numerical_gradient, relative_error


@pytest.mark.parametrize("C", [2, 3, 10, 100, 1000])
def test_expected_initial_loss_is_torch_cross_entropy_of_equal_scores(C):
    scores = torch.zeros(5, C, dtype=torch.float64)
    y = torch.arange(5) % C
    assert P.expected_initial_loss(C) == pytest.approx(torch.nn.functional.cross_entropy(scores, y).item(), rel=1e-12)
    assert isinstance(P.expected_initial_loss(C), float)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), seed=st.integers(0, 2**31 - 1),
       step=st.floats(1e-6, 10.0))
def test_update_ratio_is_torch_norm_of_the_difference_over_the_norm(shape, seed, step):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape) + 0.1
    w_next = w + step * rng.standard_normal(shape)
    before = (w.copy(), w_next.copy())
    expected = (torch.linalg.vector_norm(torch.tensor(w_next - w)) / torch.linalg.vector_norm(torch.tensor(w))).item()
    assert P.update_ratio(w, w_next) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(w_next, before[1])


def test_update_ratio_sees_an_update_that_keeps_the_norm():
    w = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert P.update_ratio(w, w[::-1].copy()) == pytest.approx(math.sqrt(50) / 5)
    assert P.update_ratio(w, w.copy()) == 0.0


@pytest.mark.parametrize("low, high", [(1e-4, 1e-1), (0.5, 2.0), (1e-7, 1e3)])
def test_sample_log_uniform_gives_every_decade_its_share(low, high):
    x = P.sample_log_uniform(low, high, np.random.default_rng(0), size=100_000)
    assert x.min() >= low and x.max() <= high
    u = (np.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts / len(x) - 0.1) < 0.005), counts


def test_sample_log_uniform_shapes_scalars_and_reproducibility():
    assert isinstance(P.sample_log_uniform(1e-3, 1.0, np.random.default_rng(0)), float)
    assert P.sample_log_uniform(1e-3, 1.0, np.random.default_rng(0), size=(2, 3)).shape == (2, 3)
    np.random.seed(1)
    a = P.sample_log_uniform(1e-3, 1.0, np.random.default_rng(4), size=8)
    np.random.seed(2)
    np.testing.assert_array_equal(a, P.sample_log_uniform(1e-3, 1.0, np.random.default_rng(4), size=8))
    with pytest.raises(ValueError, match="0 < low < high"):
        P.sample_log_uniform(0.0, 1.0, np.random.default_rng(0))


def test_random_search_calls_once_per_trial_and_sorts_best_first():
    calls = []
    space = {"lr": (1e-4, 1.0, "log"), "keep": (0.2, 0.8, "linear")}

    def train_fn(config):
        calls.append(dict(config))
        return -(math.log10(config["lr"]) + 2) ** 2 - config["keep"]

    results = P.random_search(train_fn, space, 200, np.random.default_rng(3))
    assert len(calls) == 200 and len(results) == 200
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)
    assert all(train_fn(c) == s for c, s in results[:5])
    lrs = np.array([c["lr"] for c in calls])
    keeps = np.array([c["keep"] for c in calls])
    assert 0.15 < np.mean(lrs < 1e-3) < 0.35          # a quarter of the log range
    assert 0.4 < np.mean(keeps < 0.5) < 0.6            # half of the linear range
    with pytest.raises(ValueError, match="scale"):
        P.random_search(train_fn, {"lr": (1e-4, 1.0, "log10")}, 1, np.random.default_rng(0))


def test_grid_search_tries_every_combination_and_refine_space_narrows_around_the_best():
    results = P.grid_search(lambda c: -abs(c["a"] - 2) - c["b"], {"a": [1, 2, 3], "b": [0.1, 0.2]})
    assert len(results) == 6 and results[0][0] == {"a": 2.0, "b": 0.1}
    space = {"a": (1e-4, 1.0, "log"), "b": (0.0, 1.0, "linear")}
    fine = P.refine_space([({"a": 1e-2, "b": 0.5}, 1.0), ({"a": 2e-2, "b": 0.6}, 0.9)], space, top=2)
    assert fine["a"][:2] == pytest.approx((5e-3, 4e-2)) and fine["a"][2] == "log"
    assert 0.0 <= fine["b"][0] < 0.5 and 0.6 < fine["b"][1] <= 1.0 and fine["b"][2] == "linear"


@settings(max_examples=30, deadline=None)
@given(M=st.integers(1, 5), N=st.integers(1, 6), C=st.integers(2, 5), seed=st.integers(0, 2**31 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_ensemble_predict_is_the_mean_of_the_probabilities(M, N, C, seed, dtype):
    rng = np.random.default_rng(seed)
    members = [torch.softmax(torch.tensor(rng.standard_normal((N, C))), dim=1).numpy().astype(dtype)
               for _ in range(M)]
    out = P.ensemble_predict(members)
    assert out.shape == (N, C) and out.dtype == dtype
    np.testing.assert_allclose(out, torch.stack([torch.tensor(m) for m in members]).mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_class_weighted_cross_entropy_matches_torch_and_the_numerical_gradient():
    rng = np.random.default_rng(0)
    scores, y = rng.standard_normal((7, 4)), np.array([0, 1, 2, 3, 3, 1, 0])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    loss_fn = P.class_weighted_cross_entropy(w)
    value, dscores = loss_fn(scores, y)
    t = torch.tensor(scores, requires_grad=True)
    gold = torch.nn.functional.cross_entropy(t, torch.tensor(y), weight=torch.tensor(w))
    gold.backward()
    assert value == pytest.approx(gold.item(), rel=1e-12)
    np.testing.assert_allclose(dscores, t.grad.numpy(), rtol=1e-10, atol=1e-14)
    numeric = numerical_gradient(lambda s: loss_fn(s, y)[0], scores.copy())
    assert relative_error(dscores, numeric) < 1e-7
    plain = P.class_weighted_cross_entropy(np.ones(4))(scores, y)[0]
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(torch.tensor(scores), torch.tensor(y)).item())
    with pytest.raises(ValueError, match="positive"):
        P.class_weighted_cross_entropy(np.array([1.0, 0.0]))
