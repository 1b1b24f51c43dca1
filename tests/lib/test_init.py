"""nnlab.init: shapes, determinism, and distributions against torch.nn.init."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nnlab import init

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)

RANDOM_INITS = [init.random_init, init.xavier_init, init.he_init]
ALL_INITS = [init.zeros_init] + RANDOM_INITS


@pytest.mark.parametrize("fn", ALL_INITS)
@fast
@given(fan_in=st.integers(1, 40), fan_out=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_shape_dtype_and_determinism(fn, fan_in, fan_out, seed):
    W = fn(fan_in, fan_out, np.random.default_rng(seed))
    assert W.shape == (fan_in, fan_out)
    assert W.dtype == np.float64
    np.testing.assert_array_equal(W, fn(fan_in, fan_out, np.random.default_rng(seed)))


@pytest.mark.parametrize("fn", RANDOM_INITS)
def test_independent_of_global_random_state(fn):
    np.random.seed(0)
    a = fn(10, 10, np.random.default_rng(5))
    np.random.seed(1)
    b = fn(10, 10, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn(10, 10, np.random.default_rng(6)))


def test_zeros():
    np.testing.assert_array_equal(init.zeros_init(3, 4, np.random.default_rng(0)), np.zeros((3, 4)))


def torch_sample(fan_in, fan_out, kind):
    gen = torch.Generator().manual_seed(0)
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)  # torch stores (out, in)
    if kind == "xavier":
        torch.nn.init.xavier_normal_(w, generator=gen)
    elif kind == "he":
        torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=gen)
    else:
        torch.nn.init.normal_(w, 0.0, 0.05, generator=gen)
    return w.numpy().ravel()


@pytest.mark.parametrize("kind, fn", [("xavier", init.xavier_init), ("he", init.he_init),
                                      ("random", lambda i, o, r: init.random_init(i, o, r, scale=0.05))])
@pytest.mark.parametrize("fan_in, fan_out", [(300, 100), (50, 400)])
def test_distribution_matches_torch(kind, fn, fan_in, fan_out):
    ours = fn(fan_in, fan_out, np.random.default_rng(0)).ravel()
    gold = torch_sample(fan_in, fan_out, kind)
    # Same distribution: a two-sample Kolmogorov-Smirnov test (fixed seeds, so not flaky).
    assert stats.ks_2samp(ours, gold).pvalue > 1e-3
    # And the right variance, tightly: a wrong constant (e.g. 1/fan_in) is far outside 5%.
    assert ours.var() == pytest.approx(gold.var(), rel=0.05)
    assert abs(ours.mean()) < 4 * gold.std() / np.sqrt(ours.size)


def test_variances_are_the_documented_formulas():
    rng = np.random.default_rng(0)
    assert init.xavier_init(200, 600, rng).var() == pytest.approx(2 / 800, rel=0.02)
    assert init.he_init(200, 600, rng).var() == pytest.approx(2 / 200, rel=0.02)
    assert init.random_init(200, 600, rng).std() == pytest.approx(0.01, rel=0.02)
    assert init.random_init(200, 600, rng, scale=3.0).std() == pytest.approx(3.0, rel=0.02)


def test_init_params_layout():
    calls = []

    def recording_init(fan_in, fan_out, rng):
        calls.append((fan_in, fan_out))
        return init.he_init(fan_in, fan_out, rng)

    params = init.init_params([5, 7, 3, 2], recording_init, np.random.default_rng(0))
    assert calls == [(5, 7), (7, 3), (3, 2)]
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert params["W1"].shape == (5, 7) and params["W3"].shape == (3, 2)
    for i, h in enumerate([7, 3, 2], start=1):
        np.testing.assert_array_equal(params[f"b{i}"], np.zeros(h))
    again = init.init_params([5, 7, 3, 2], init.he_init, np.random.default_rng(0))
    for k in params:
        np.testing.assert_array_equal(params[k], again[k])


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        init.init_params([5], init.he_init, np.random.default_rng(0))
    with pytest.raises(ValueError):
        init.he_init(0, 3, np.random.default_rng(0))
