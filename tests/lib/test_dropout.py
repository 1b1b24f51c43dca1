"""nnlab.dropout: inverted dropout statistics, gradients with a fixed mask, modes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab.dropout import dropout_backward, dropout_forward
from nnlab.gradcheck import numerical_gradient_array, relative_error

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.9])
def test_train_mode_statistics(keep_prob):
    x = np.full((500, 400), 2.0)
    out, _ = dropout_forward(x, keep_prob, "train", np.random.default_rng(0))
    kept = out != 0
    # 200,000 Bernoulli draws: the kept fraction is within 1% of keep_prob.
    assert kept.mean() == pytest.approx(keep_prob, abs=0.01)
    np.testing.assert_allclose(out[kept], 2.0 / keep_prob)  # inverted: kept units are scaled up
    assert out.mean() == pytest.approx(2.0, rel=0.02)       # so the expectation is unchanged


@fast
@given(n=st.integers(1, 6), d=st.integers(1, 7), seed=st.integers(0, 2**32 - 1),
       keep_prob=st.sampled_from([0.3, 0.5, 0.8, 1.0]))
def test_gradient_with_fixed_mask(n, d, seed, keep_prob):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    dout = rng.standard_normal((n, d))
    x0, dout0 = x.copy(), dout.copy()
    out, cache = dropout_forward(x, keep_prob, "train", np.random.default_rng(seed))
    dx = dropout_backward(dout, cache)
    # The same seed gives the same mask on every call of f, so f is a fixed linear map.
    num = numerical_gradient_array(
        lambda z: dropout_forward(z, keep_prob, "train", np.random.default_rng(seed))[0], x.copy(), dout)
    assert relative_error(dx, num) < 1e-8
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)
    # The units dropped in the forward pass get no gradient.
    assert np.all(dx[out == 0] == 0)


def test_test_mode_is_identity_and_does_not_draw():
    x = np.random.default_rng(0).standard_normal((5, 4))
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    out, cache = dropout_forward(x, 0.3, "test", rng)
    np.testing.assert_array_equal(out, x)
    assert rng.bit_generator.state == state
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


def test_keep_prob_one_is_identity_in_train_mode():
    x = np.random.default_rng(0).standard_normal((5, 4))
    out, cache = dropout_forward(x, 1.0, "train", np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(x, cache), x)


def test_deterministic_given_rng_and_independent_of_global_state():
    x = np.ones((20, 20))
    np.random.seed(0)
    a, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(7))
    np.random.seed(1)
    b, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    c, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(8))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_float32_is_kept(mode):
    x = np.ones((8, 8), dtype=np.float32)
    out, cache = dropout_forward(x, 0.5, mode, np.random.default_rng(0))
    assert out.dtype == np.float32
    assert dropout_backward(np.ones_like(x), cache).dtype == np.float32


def test_bad_arguments_raise():
    x = np.ones((2, 2))
    with pytest.raises(ValueError):
        dropout_forward(x, 0.0, "train", np.random.default_rng(0))
    with pytest.raises(ValueError):
        dropout_forward(x, 1.5, "train", np.random.default_rng(0))
    with pytest.raises(ValueError):
        dropout_forward(x, 0.5, "eval", np.random.default_rng(0))
