"""nnlab.activations against PyTorch (gold) and numerical gradients."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import activations as A
from nnlab.gradcheck import numerical_gradient_array, relative_error

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)

ALPHA = 0.2  # a non-default slope, so a hard-coded 0.01 would be caught

# name -> (forward, backward, torch function); kinked functions are checked away from the kink.
CASES = {
    "sigmoid": (A.sigmoid_forward, A.sigmoid_backward, torch.sigmoid),
    "tanh": (A.tanh_forward, A.tanh_backward, torch.tanh),
    "relu": (A.relu_forward, A.relu_backward, F.relu),
    "leaky_relu": (lambda x: A.leaky_relu_forward(x, ALPHA), A.leaky_relu_backward,
                   lambda t: F.leaky_relu(t, ALPHA)),
    "softplus": (A.softplus_forward, A.softplus_backward, F.softplus),
    "swish": (A.swish_forward, A.swish_backward, F.silu),
}
KINKED = {"relu", "leaky_relu"}

shapes = st.one_of(
    st.tuples(st.integers(1, 6), st.integers(1, 7)),
    st.tuples(st.integers(1, 10)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4)),
)


def random_input(seed, shape, scale, kinked):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape)
    if kinked:  # central differences straddling the kink at 0 are meaningless
        x[np.abs(x) < 1e-3] = 1e-3
    return x, rng.standard_normal(shape)


def torch_grad(tfn, x, dout):
    t = torch.tensor(x, requires_grad=True)
    out = tfn(t)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("name", CASES)
@fast
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.5, 3.0, 20.0]))
def test_matches_torch_and_numerical_gradient(name, shape, seed, scale):
    fwd, bwd, tfn = CASES[name]
    x, dout = random_input(seed, shape, scale, name in KINKED)
    x0, dout0 = x.copy(), dout.copy()

    out, cache = fwd(x)
    dx = bwd(dout, cache)
    t_out, t_dx = torch_grad(tfn, x, dout)

    assert out.shape == x.shape and dx.shape == x.shape
    # torch's softplus returns x itself above x = 20 (its `threshold`), off by up to e^-20 ~ 2e-9.
    rtol = 1e-8 if name == "softplus" else 1e-12
    np.testing.assert_allclose(out, t_out, rtol=rtol, atol=1e-15, err_msg=f"{name} forward")
    np.testing.assert_allclose(dx, t_dx, rtol=max(rtol, 1e-10), atol=1e-15, err_msg=f"{name} backward")
    np.testing.assert_array_equal(x, x0, err_msg=f"{name} modified its input")
    np.testing.assert_array_equal(dout, dout0, err_msg=f"{name} backward modified dout")

    if scale <= 3.0:  # numerical gradients of saturated regions carry no information
        num = numerical_gradient_array(lambda z: fwd(z)[0], x.copy(), dout)
        # Relative error, or absolute where the gradient is ~0 (saturation) and only noise is left.
        assert relative_error(dx, num) < 1e-7 or np.max(np.abs(dx - num)) < 1e-9, \
            f"{name}: backward disagrees with numerical gradient"


@pytest.mark.parametrize("name", CASES)
def test_backward_leaves_cache_untouched(name):
    fwd, bwd, _ = CASES[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    _, cache = fwd(x)
    snapshot = [np.array(c, copy=True) if isinstance(c, np.ndarray) else c
                for c in (cache if isinstance(cache, tuple) else (cache,))]
    bwd(rng.standard_normal((4, 5)), cache)
    after = cache if isinstance(cache, tuple) else (cache,)
    for a, b in zip(after, snapshot):
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype):
    fwd, bwd, _ = CASES[name]
    x = np.linspace(-4, 4, 12, dtype=dtype).reshape(3, 4)
    out, cache = fwd(x)
    dx = bwd(np.ones_like(x), cache)
    assert out.dtype == dtype, f"{name} forward returns {out.dtype} for {dtype.__name__} input"
    assert dx.dtype == dtype, f"{name} backward returns {dx.dtype} for {dtype.__name__} input"


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_large_inputs(name, dtype):
    fwd, bwd, tfn = CASES[name]
    x = np.array([-1e4, -1e3, -700.0, -50.0, 0.0, 50.0, 700.0, 1e3, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        out, cache = fwd(x)
        dx = bwd(np.ones_like(x), cache)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    with torch.no_grad():
        expected = tfn(torch.tensor(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-30)


def test_relu_gradient_is_zero_at_zero():
    x = np.array([-1.0, 0.0, 0.0, 2.0])
    _, cache = A.relu_forward(x)
    np.testing.assert_array_equal(A.relu_backward(np.ones(4), cache), [0.0, 0.0, 0.0, 1.0])


def test_leaky_relu_default_alpha_and_gradient_at_zero():
    x = np.array([-2.0, 0.0, 3.0])
    out, cache = A.leaky_relu_forward(x)
    np.testing.assert_allclose(out, [-0.02, 0.0, 3.0])
    t = torch.tensor(x, requires_grad=True)
    F.leaky_relu(t, 0.01).sum().backward()
    np.testing.assert_allclose(A.leaky_relu_backward(np.ones(3), cache), t.grad.numpy())


def test_swish_is_x_times_sigmoid():
    x = np.linspace(-6, 6, 25)
    np.testing.assert_allclose(A.swish_forward(x)[0], x * A.sigmoid_forward(x)[0], rtol=1e-14)


def test_sigmoid_tails_are_accurate_not_just_finite():
    # 1 - sigmoid(x) style cancellation would give 0 or garbage here.
    x = np.array([-30.0, -100.0, -700.0])
    np.testing.assert_allclose(A.sigmoid_forward(x)[0], np.exp(x) / (1 + np.exp(x)), rtol=1e-12)


@fast
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 6)), seed=st.integers(0, 2**32 - 1),
       axis=st.sampled_from([0, 1, -1]), scale=st.sampled_from([1.0, 100.0, 1e3]))
def test_softmax_matches_torch(shape, seed, axis, scale):
    x = scale * np.random.default_rng(seed).standard_normal(shape)
    x0 = x.copy()
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        p = A.softmax(x, axis=axis)
    expected = torch.softmax(torch.tensor(x), dim=axis).numpy()
    np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(x, x0)


def test_softmax_default_axis_is_last_and_dtype_kept():
    x = np.arange(6, dtype=np.float32).reshape(2, 3) * 1e3
    p = A.softmax(x)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(x), dim=-1).numpy(), rtol=1e-6, atol=1e-30)


def test_integer_input_is_promoted_to_float():
    out, _ = A.sigmoid_forward(np.array([0, 1, -1]))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0], 0.5)
