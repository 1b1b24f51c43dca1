"""nnlab.network.FullyConnectedNet: full-network gradient checks, pluggable parts, overfitting."""

import numpy as np
import pytest

from nnlab import activations, layers, optim, regularization
from nnlab.gradcheck import numerical_gradient, relative_error
from nnlab.network import FullyConnectedNet


def small_problem(seed=0, n=6, d=5, c=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def check_all_grads(net, X, y, dropout_seed=None, tol=1e-6):
    """Every analytic gradient of the full loss against central differences (float64)."""
    def f(_=None):
        if dropout_seed is not None:
            net.rng = np.random.default_rng(dropout_seed)  # the same dropout mask on every call
        return net.loss(X, y)

    _, grads = f()
    assert set(grads) == set(net.params)
    for name, p in net.params.items():
        assert grads[name].shape == p.shape, name
        num = numerical_gradient(lambda _: f()[0], p)
        err = relative_error(grads[name], num)
        # A bias right before batch norm has an exactly zero gradient (the mean is subtracted):
        # then the numerical estimate is pure rounding noise and only an absolute check makes sense.
        assert err < tol or np.max(np.abs(grads[name] - num)) < 1e-9, f"{name}: relative error {err:.2e}"


CONFIGS = {
    "relu": dict(activation="relu"),
    "tanh": dict(activation="tanh"),
    "sigmoid_xavier": dict(activation="sigmoid", init="xavier"),
    "swish": dict(activation="swish"),
    "batchnorm": dict(activation="tanh", normalization="batchnorm"),
    "layernorm": dict(activation="tanh", normalization="layernorm"),
    "l2": dict(activation="tanh", regularizer="l2", reg=0.7),
    "l1": dict(activation="tanh", regularizer="l1", reg=0.3),
    "dropout": dict(activation="tanh", keep_prob=0.6),
    "everything": dict(activation="tanh", normalization="batchnorm", regularizer="l2", reg=0.5, keep_prob=0.7),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("sizes", [[5, 7, 4], [5, 6, 5, 4]])
def test_full_network_gradient_check(config, sizes):
    kwargs = dict(CONFIGS[config])
    net = FullyConnectedNet(sizes, rng=np.random.default_rng(1), **kwargs)
    if "normalization" in kwargs:  # non-trivial gamma/beta so their gradients are exercised
        rng = np.random.default_rng(2)
        for k in net.params:
            if k.startswith(("gamma", "beta")):
                net.params[k] = rng.uniform(0.5, 1.5, net.params[k].shape)
    X, y = small_problem()
    check_all_grads(net, X, y, dropout_seed=3 if "keep_prob" in kwargs else None)


def test_params_layout_and_bn_params():
    net = FullyConnectedNet([5, 7, 6, 3], normalization="batchnorm", rng=np.random.default_rng(0))
    assert set(net.params) == {"W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"}
    assert net.params["W2"].shape == (7, 6) and net.params["b3"].shape == (3,)
    assert len(net.bn_params) == 2
    X, y = small_problem(n=8, d=5, c=3)
    net.loss(X, y)
    np.testing.assert_allclose(net.bn_params[0]["running_mean"],
                               0.1 * (X @ net.params["W1"] + net.params["b1"]).mean(axis=0))
    # Test mode uses the running statistics: a single sample gets a sensible, finite score.
    scores = net.loss(X[:1])
    assert scores.shape == (1, 3) and np.all(np.isfinite(scores))
    plain = FullyConnectedNet([5, 7, 3], rng=np.random.default_rng(0))
    assert set(plain.params) == {"W1", "b1", "W2", "b2"} and plain.bn_params == []


def test_scores_predict_and_test_mode_are_deterministic_with_dropout():
    net = FullyConnectedNet([5, 20, 4], keep_prob=0.5, rng=np.random.default_rng(0))
    X, _ = small_problem(n=9)
    s1, s2 = net.loss(X), net.loss(X)
    assert s1.shape == (9, 4)
    np.testing.assert_array_equal(s1, s2)  # no dropout at test time
    pred = net.predict(X)
    assert pred.shape == (9,) and np.issubdtype(pred.dtype, np.integer)
    np.testing.assert_array_equal(pred, np.argmax(s1, axis=1))
    np.testing.assert_array_equal(net.predict(X, batch_size=4), pred)


def test_penalty_is_added_with_batch_size_as_m():
    X, y = small_problem(n=10)
    net = FullyConnectedNet([5, 6, 4], rng=np.random.default_rng(0), regularizer="l2", reg=0.0)
    base_loss, base_grads = net.loss(X, y)
    net.reg = 2.5  # read at call time
    loss, grads = net.loss(X, y)
    assert loss == pytest.approx(base_loss + regularization.l2_penalty(net.params, 2.5, 10))
    np.testing.assert_allclose(grads["W1"], base_grads["W1"] + 2.5 / 10 * net.params["W1"])
    np.testing.assert_allclose(grads["b1"], base_grads["b1"])


def test_custom_activation_is_looked_up_at_call_time():
    calls = {"forward": 0, "backward": 0}

    def my_tanh_forward(x):
        calls["forward"] += 1
        return activations.tanh_forward(x)

    def my_tanh_backward(dout, cache):
        calls["backward"] += 1
        return activations.tanh_backward(dout, cache)

    X, y = small_problem()
    reference = FullyConnectedNet([5, 6, 6, 4], activation="tanh", rng=np.random.default_rng(0))
    net = FullyConnectedNet([5, 6, 6, 4], rng=np.random.default_rng(0))  # built with relu
    net.activation = (my_tanh_forward, my_tanh_backward)
    loss, grads = net.loss(X, y)
    ref_loss, ref_grads = reference.loss(X, y)
    assert calls == {"forward": 2, "backward": 2}
    assert loss == pytest.approx(ref_loss)
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k])


def test_every_part_is_pluggable():
    used = set()

    def spy(tag, fn):
        def wrapped(*args):
            used.add(tag)
            return fn(*args)
        return wrapped

    from nnlab import dropout as D, normalization as N
    net = FullyConnectedNet([5, 6, 4], rng=np.random.default_rng(0), normalization="layernorm",
                            keep_prob=0.8, regularizer="l1", reg=0.1)
    net.affine = (spy("affine", layers.affine_forward), spy("affine_b", layers.affine_backward))
    net.normalization = (spy("norm", N.layernorm_forward), spy("norm_b", N.layernorm_backward))
    net.dropout = (spy("drop", D.dropout_forward), spy("drop_b", D.dropout_backward))
    net.regularizer = (spy("pen", regularization.l1_penalty), spy("pen_b", regularization.l1_penalty_grads))
    net.loss_fn = spy("loss", layers.softmax_cross_entropy)
    net.loss(*small_problem())
    assert used == {"affine", "affine_b", "norm", "norm_b", "drop", "drop_b", "pen", "pen_b", "loss"}


def test_custom_init_is_used():
    def ones_init(fan_in, fan_out, rng):
        return np.ones((fan_in, fan_out))

    net = FullyConnectedNet([3, 4, 2], init=ones_init, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(net.params["W1"], np.ones((3, 4)))


def test_initial_loss_is_about_log_c():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 20))
    y = rng.integers(0, 10, 500)
    net = FullyConnectedNet([20, 50, 10], init=lambda i, o, r: 1e-3 * r.standard_normal((i, o)), rng=rng)
    loss, _ = net.loss(X, y)
    assert loss == pytest.approx(np.log(10), rel=0.01)


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_overfits_twenty_samples(normalization):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 15))
    y = rng.integers(0, 5, 20)
    net = FullyConnectedNet([15, 50, 50, 5], normalization=normalization, rng=rng)
    configs = {k: {"learning_rate": 1e-2} for k in net.params}
    for _ in range(150):
        loss, grads = net.loss(X, y)
        for k in net.params:
            net.params[k], configs[k] = optim.adam(net.params[k], grads[k], configs[k])
    assert np.mean(net.predict(X) == y) == 1.0
    assert net.loss(X, y)[0] < 0.05


def test_float32_network_stays_float32():
    net = FullyConnectedNet([5, 8, 8, 4], dtype=np.float32, normalization="batchnorm", keep_prob=0.9,
                            regularizer="l2", reg=0.1, rng=np.random.default_rng(0))
    X, y = small_problem()  # float64 inputs are converted
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert net.loss(X).dtype == np.float32
    _, grads = net.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values()), {k: g.dtype for k, g in grads.items()}
    assert all(h.dtype == np.float32 for h in net.hidden_outputs)


def test_hidden_outputs_are_recorded():
    net = FullyConnectedNet([5, 7, 6, 4], rng=np.random.default_rng(0))
    X, _ = small_problem(n=3)
    net.loss(X)
    assert [h.shape for h in net.hidden_outputs] == [(3, 7), (3, 6)]
    assert all(np.all(h >= 0) for h in net.hidden_outputs)  # after the ReLU


def test_identity_activation_collapses_to_one_linear_map():
    net = FullyConnectedNet([4, 6, 5, 3], activation="identity", rng=np.random.default_rng(0))
    X, _ = small_problem(n=5, d=4)
    p = net.params
    W = p["W1"] @ p["W2"] @ p["W3"]
    b = (p["b1"] @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"]
    np.testing.assert_allclose(net.loss(X), X @ W + b)


def test_input_is_not_modified():
    net = FullyConnectedNet([5, 6, 4], normalization="batchnorm", keep_prob=0.5, rng=np.random.default_rng(0))
    X, y = small_problem()
    X0, y0 = X.copy(), y.copy()
    net.loss(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_bad_arguments_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        FullyConnectedNet([5], rng=rng)
    with pytest.raises(ValueError):
        FullyConnectedNet([5, 3], activation="gelu", rng=rng)
    with pytest.raises(ValueError):
        FullyConnectedNet([5, 3], normalization="groupnorm", rng=rng)
    with pytest.raises(ValueError):
        FullyConnectedNet([5, 3], keep_prob=0.0, rng=rng)
    with pytest.raises(ValueError):
        FullyConnectedNet([5, 3], rng=rng).loss(np.ones((2, 5)), mode="eval")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_paths_match_the_plain_affine_layers(dtype):
    # With the reference affine pair the net skips dX of the first layer and adds the bias in
    # place; a wrapped pair goes through the plain functions. Both must agree exactly.
    X, y = small_problem(n=7)
    fast = FullyConnectedNet([5, 6, 6, 4], rng=np.random.default_rng(0), dtype=dtype)
    plain = FullyConnectedNet([5, 6, 6, 4], rng=np.random.default_rng(0), dtype=dtype)
    plain.affine = (lambda x, W, b: layers.affine_forward(x, W, b),
                    lambda dout, cache: layers.affine_backward(dout, cache))
    loss_fast, grads_fast = fast.loss(X, y)
    loss_plain, grads_plain = plain.loss(X, y)
    assert loss_fast == loss_plain
    for k in grads_fast:
        np.testing.assert_array_equal(grads_fast[k], grads_plain[k])
        assert grads_fast[k].dtype == dtype
