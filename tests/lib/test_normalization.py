"""nnlab.normalization against F.batch_norm / F.layer_norm (gold) and numerical gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import normalization as N
from nnlab.gradcheck import numerical_gradient_array, relative_error

fast = settings(max_examples=25, deadline=None, database=None, derandomize=True)


def problem(seed, n, d, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    x = shift + scale * rng.standard_normal((n, d))
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    return x, gamma, beta, dout


def torch_forward_backward(fn, x, gamma, beta, dout):
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = fn(tx, tg, tb)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), tx.grad.numpy(), tg.grad.numpy(), tb.grad.numpy()


def check_against(ours_fwd, ours_bwd, param, gold_fn, x, gamma, beta, dout):
    snapshot = [a.copy() for a in (x, gamma, beta, dout)]
    out, cache = ours_fwd(x, gamma, beta, param)
    dx, dgamma, dbeta = ours_bwd(dout, cache)
    g_out, g_dx, g_dgamma, g_dbeta = torch_forward_backward(gold_fn, x, gamma, beta, dout)
    np.testing.assert_allclose(out, g_out, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dx, g_dx, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dgamma, g_dgamma, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dbeta, g_dbeta, rtol=1e-9, atol=1e-10)
    for a, b in zip((x, gamma, beta, dout), snapshot):
        np.testing.assert_array_equal(a, b)
    return cache, (dx, dgamma, dbeta)


def numerical_check(fwd, param_factory, x, gamma, beta, dout, grads):
    dx, dgamma, dbeta = grads
    num_dx = numerical_gradient_array(lambda z: fwd(z, gamma, beta, param_factory())[0], x.copy(), dout)
    num_dg = numerical_gradient_array(lambda g: fwd(x, g, beta, param_factory())[0], gamma.copy(), dout)
    num_db = numerical_gradient_array(lambda b: fwd(x, gamma, b, param_factory())[0], beta.copy(), dout)
    for name, ours, num in (("dx", dx, num_dx), ("dgamma", dgamma, num_dg), ("dbeta", dbeta, num_db)):
        # A relative error, unless the gradient itself is ~0 (e.g. layer norm over D = 2 features,
        # whose outputs are always +-1): then the numerical estimate is all noise, so compare absolutely.
        assert relative_error(ours, num) < 1e-6 or np.max(np.abs(ours - num)) < 1e-8, name


# --------------------------------------------------------------------------- standardization

def test_standardize_fit_and_apply():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (200, 4))
    X[:, 2] = 0.1  # a constant feature whose computed std may be 1e-17 instead of 0
    mean, std = N.standardize_fit(X)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    np.testing.assert_allclose(std[[0, 1, 3]], X[:, [0, 1, 3]].std(axis=0, ddof=0))
    assert std[2] == 1.0
    Z = N.standardize_apply(X, mean, std)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, [0, 1, 3]].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0.0)
    X_test = rng.normal(5.0, 3.0, (7, 4))
    np.testing.assert_allclose(N.standardize_apply(X_test, mean, std), (X_test - mean) / std)


def test_standardize_matches_sklearn_and_keeps_float32():
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(1).normal(2.0, 4.0, (50, 3))
    mean, std = N.standardize_fit(X)
    np.testing.assert_allclose(N.standardize_apply(X, mean, std), StandardScaler().fit_transform(X), rtol=1e-12)
    X32 = X.astype(np.float32)
    mean32, std32 = N.standardize_fit(X32)
    assert N.standardize_apply(X32, mean32, std32).dtype == np.float32
    assert N.standardize_apply(X32, mean, std).dtype == np.float32


# --------------------------------------------------------------------------- batch norm

@fast
@given(n=st.integers(2, 8), d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       shift=st.sampled_from([0.0, 5.0]), scale=st.sampled_from([0.3, 1.0, 10.0]))
def test_batchnorm_train_matches_torch(n, d, seed, shift, scale):
    x, gamma, beta, dout = problem(seed, n, d, shift, scale)
    rm, rv = np.random.default_rng(seed + 1).standard_normal(d), np.random.default_rng(seed + 2).uniform(0.5, 2, d)
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9, "running_mean": rm.copy(), "running_var": rv.copy()}
    gold = lambda tx, tg, tb: F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    cache, grads = check_against(N.batchnorm_forward, N.batchnorm_backward, bn_param, gold, x, gamma, beta, dout)

    # Running averages: torch's momentum is 1 - ours; torch keeps the unbiased variance,
    # the course (like CS231n) the batch variance used for normalization.
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    F.batch_norm(torch.tensor(x), t_rm, t_rv, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(bn_param["running_mean"], t_rm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], 0.9 * rv + 0.1 * x.var(axis=0), rtol=1e-12)

    # Central differences need h = 1e-5 to be tiny next to the batch spread; two nearly equal
    # samples (possible when N = 2) would make the numerical estimate, not the backward, wrong.
    if x.std(axis=0).min() > 0.05 * scale:
        numerical_check(N.batchnorm_forward, lambda: {"mode": "train"}, x, gamma, beta, dout, grads)


@fast
@given(n=st.integers(1, 6), d=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_batchnorm_test_mode_matches_torch(n, d, seed):
    x, gamma, beta, dout = problem(seed, n, d)
    rng = np.random.default_rng(seed + 1)
    rm, rv = rng.standard_normal(d), rng.uniform(0.2, 3.0, d)

    def param():
        return {"mode": "test", "eps": 1e-5, "running_mean": rm.copy(), "running_var": rv.copy()}

    p = param()
    gold = lambda tx, tg, tb: F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tg, tb, training=False, eps=1e-5)
    _, grads = check_against(N.batchnorm_forward, N.batchnorm_backward, p, gold, x, gamma, beta, dout)
    np.testing.assert_array_equal(p["running_mean"], rm)  # test mode leaves the statistics alone
    np.testing.assert_array_equal(p["running_var"], rv)
    numerical_check(N.batchnorm_forward, param, x, gamma, beta, dout, grads)


def test_batchnorm_running_averages_over_several_steps():
    rng = np.random.default_rng(0)
    bn_param = {"mode": "train", "momentum": 0.8}
    gamma, beta = np.ones(3), np.zeros(3)
    rm, rv = np.zeros(3), np.ones(3)  # the documented defaults
    for _ in range(5):
        x = rng.normal(4.0, 2.0, (16, 3))
        N.batchnorm_forward(x, gamma, beta, bn_param)
        rm = 0.8 * rm + 0.2 * x.mean(axis=0)
        rv = 0.8 * rv + 0.2 * x.var(axis=0)
    np.testing.assert_allclose(bn_param["running_mean"], rm, rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], rv, rtol=1e-12)


def test_batchnorm_train_output_is_normalized():
    x, _, _, _ = problem(0, 64, 5, shift=3.0, scale=4.0)
    out, _ = N.batchnorm_forward(x, np.ones(5), np.zeros(5), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-5)


# --------------------------------------------------------------------------- layer norm

@fast
@given(n=st.integers(1, 6), d=st.integers(2, 8), seed=st.integers(0, 2**32 - 1),
       shift=st.sampled_from([0.0, 5.0]), scale=st.sampled_from([0.3, 1.0, 10.0]))
def test_layernorm_matches_torch(n, d, seed, shift, scale):
    x, gamma, beta, dout = problem(seed, n, d, shift, scale)
    gold = lambda tx, tg, tb: F.layer_norm(tx, (d,), tg, tb, eps=1e-5)
    _, grads = check_against(N.layernorm_forward, N.layernorm_backward, {"eps": 1e-5}, gold, x, gamma, beta, dout)
    if x.std(axis=1).min() > 0.05 * scale:  # see the batch norm test: no nearly equal features
        numerical_check(N.layernorm_forward, lambda: {"eps": 1e-5}, x, gamma, beta, dout, grads)


def test_layernorm_uses_eps():
    x = np.array([[1.0, 2.0, 3.0]])
    a, _ = N.layernorm_forward(x, np.ones(3), np.zeros(3), {"eps": 1e-5})
    b, _ = N.layernorm_forward(x, np.ones(3), np.zeros(3), {"eps": 10.0})
    assert np.abs(b).max() < 0.5 * np.abs(a).max()


# --------------------------------------------------------------------------- shared properties

@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_float32_in_float32_out(kind, mode):
    x, gamma, beta, dout = (a.astype(np.float32) for a in problem(0, 6, 4))
    if kind == "batchnorm":
        out, cache = N.batchnorm_forward(x, gamma, beta, {"mode": mode})
        grads = N.batchnorm_backward(dout, cache)
    else:
        out, cache = N.layernorm_forward(x, gamma, beta, {"eps": 1e-5})
        grads = N.layernorm_backward(dout, cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_backward_does_not_mutate_cache(kind):
    x, gamma, beta, dout = problem(0, 5, 4)
    fwd, bwd = ((N.batchnorm_forward, N.batchnorm_backward) if kind == "batchnorm"
                else (N.layernorm_forward, N.layernorm_backward))
    _, cache = fwd(x, gamma, beta, {"mode": "train", "eps": 1e-5})
    snapshot = [np.array(c, copy=True) if isinstance(c, np.ndarray) else c for c in cache]
    first = bwd(dout, cache)
    second = bwd(dout, cache)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(cache, snapshot):
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_batchnorm_bad_mode_raises():
    with pytest.raises(ValueError):
        N.batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})


def test_running_averages_differ_from_torch_as_documented():
    # COURSE.md: momentum is the weight of the OLD value (torch: of the new one), and the running variance
    # averages the biased batch variance (torch: the unbiased one, N / (N - 1) times larger).
    x, gamma, beta, _ = problem(3, 5, 4, shift=2.0, scale=3.0)
    rm, rv = np.zeros(4), np.ones(4)
    ours = {"mode": "train", "momentum": 0.9}
    N.batchnorm_forward(x, gamma, beta, ours)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    F.batch_norm(torch.tensor(x), t_rm, t_rv, training=True, momentum=0.9, eps=1e-5)  # same number, other meaning
    assert not np.allclose(ours["running_mean"], t_rm.numpy())
    np.testing.assert_allclose(t_rm.numpy(), 0.1 * rm + 0.9 * x.mean(axis=0), rtol=1e-12)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    F.batch_norm(torch.tensor(x), t_rm, t_rv, training=True, momentum=0.1, eps=1e-5)  # torch's 1 - momentum
    np.testing.assert_allclose(ours["running_mean"], t_rm.numpy(), rtol=1e-12)
    unbiased_gap = t_rv.numpy() - ours["running_var"]
    np.testing.assert_allclose(unbiased_gap, 0.1 * (x.var(axis=0, ddof=1) - x.var(axis=0)), rtol=1e-10)
    assert np.all(unbiased_gap > 0)


def test_test_mode_changes_nothing_in_bn_param_even_without_running_statistics():
    x, gamma, beta, _ = problem(4, 6, 3)
    param = {"mode": "test"}
    out, _ = N.batchnorm_forward(x, gamma, beta, param)
    assert param == {"mode": "test"}
    np.testing.assert_allclose(out, gamma * x / np.sqrt(1 + 1e-5) + beta, rtol=1e-12)  # zeros and ones
    rm, rv = np.arange(3.0), np.full(3, 2.0)
    param = {"mode": "test", "running_mean": rm, "running_var": rv, "momentum": 0.5}
    N.batchnorm_forward(x, gamma, beta, param)
    assert param["running_mean"] is rm and param["running_var"] is rv
    np.testing.assert_array_equal(rm, np.arange(3.0))


def test_batchnorm_one_sample_in_train_mode_gives_beta_and_zero_dx():
    # torch refuses a batch of one in training mode; the course's formula gives x_hat = 0 (var = 0, eps keeps it finite).
    x, gamma, beta, dout = problem(7, 1, 4)
    param = {"mode": "train", "momentum": 0.5, "running_mean": np.zeros(4), "running_var": np.ones(4)}
    out, cache = N.batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_array_equal(out, beta[None, :])
    dx, dgamma, dbeta = N.batchnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, 0, atol=1e-12)
    np.testing.assert_allclose(dgamma, 0, atol=1e-12)
    np.testing.assert_allclose(dbeta, dout[0])
    np.testing.assert_allclose(param["running_mean"], 0.5 * x[0])
    np.testing.assert_allclose(param["running_var"], 0.5 * np.ones(4))


@pytest.mark.parametrize("n", [1, 3])
def test_layernorm_one_feature_matches_torch(n):
    x, gamma, beta, dout = problem(8, n, 1)
    gold = lambda tx, tg, tb: F.layer_norm(tx, (1,), tg, tb, eps=1e-5)
    check_against(N.layernorm_forward, N.layernorm_backward, {"eps": 1e-5}, gold, x, gamma, beta, dout)


@pytest.mark.parametrize("n, d", [(1, 5), (4, 1)])
def test_batchnorm_test_mode_edge_shapes_match_torch(n, d):
    x, gamma, beta, dout = problem(9, n, d)
    rm, rv = np.full(d, 0.3), np.full(d, 2.0)
    gold = lambda tx, tg, tb: F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tg, tb, training=False, eps=1e-5)
    check_against(N.batchnorm_forward, N.batchnorm_backward, {"mode": "test", "running_mean": rm.copy(),
                                                             "running_var": rv.copy()}, gold, x, gamma, beta, dout)
