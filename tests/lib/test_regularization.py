"""nnlab.regularization: penalties against torch autograd and numerical gradients; early stopping."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import regularization as R
from nnlab.gradcheck import numerical_gradient, relative_error

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)


def random_params(seed, sizes, with_norm=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((a, b)).astype(dtype)
        params[f"b{i}"] = rng.standard_normal(b).astype(dtype)
        if with_norm and i < len(sizes) - 1:
            params[f"gamma{i}"] = rng.standard_normal(b).astype(dtype)
            params[f"beta{i}"] = rng.standard_normal(b).astype(dtype)
    params["W1"].flat[0] = 0.0  # an exact zero: the L1 gradient there must be 0
    return params


def torch_penalty(params, lam, m, kind):
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    weights = [t for k, t in tp.items() if k.startswith("W")]
    if kind == "l2":
        penalty = lam / (2 * m) * sum((w ** 2).sum() for w in weights)
    else:
        penalty = lam / m * sum(w.abs().sum() for w in weights)
    penalty.backward()
    grads = {k: (t.grad.numpy() if t.grad is not None else np.zeros_like(params[k])) for k, t in tp.items()}
    return penalty.item(), grads


PAIRS = {"l2": (R.l2_penalty, R.l2_penalty_grads), "l1": (R.l1_penalty, R.l1_penalty_grads)}

sizes_st = st.lists(st.integers(1, 6), min_size=2, max_size=4)


@pytest.mark.parametrize("kind", PAIRS)
@fast
@given(sizes=sizes_st, seed=st.integers(0, 2**32 - 1), lam=st.sampled_from([0.0, 1e-3, 0.5, 3.7]), m=st.integers(1, 300))
def test_penalty_matches_torch_autograd(kind, sizes, seed, lam, m):
    penalty, penalty_grads = PAIRS[kind]
    params = random_params(seed, sizes)
    before = {k: v.copy() for k, v in params.items()}
    value = penalty(params, lam, m)
    grads = penalty_grads(params, lam, m)
    gold_value, gold_grads = torch_penalty(params, lam, m, kind)
    assert isinstance(value, float)
    assert value == pytest.approx(gold_value, rel=1e-12, abs=1e-300)
    assert set(grads) == set(params)
    for k in params:
        assert grads[k].shape == params[k].shape
        np.testing.assert_allclose(grads[k], gold_grads[k], rtol=1e-12, atol=0, err_msg=f"{kind} grad of {k}")
        np.testing.assert_array_equal(params[k], before[k], err_msg=f"{kind} modified params[{k!r}]")
    for k in params:
        if not k.startswith("W"):
            assert not np.any(grads[k]), f"{kind} penalizes {k}, which is not a weight"


@pytest.mark.parametrize("kind", PAIRS)
def test_penalty_gradient_is_numerically_right(kind):
    penalty, penalty_grads = PAIRS[kind]
    params = random_params(3, [4, 5, 3])
    params["W1"].flat[0] = 0.5  # away from L1's kink
    grads = penalty_grads(params, 0.7, 11)
    for k in params:
        num = numerical_gradient(lambda _: penalty(params, 0.7, 11), params[k])
        assert relative_error(grads[k], num) < 1e-7, k


def test_l2_and_l1_values_by_hand():
    params = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([100.0, 100.0]), "W2": np.array([[3.0], [0.0]])}
    assert R.l2_penalty(params, 2.0, 4) == pytest.approx(2.0 / 8 * (1 + 4 + 9))
    assert R.l1_penalty(params, 2.0, 4) == pytest.approx(2.0 / 4 * (1 + 2 + 3))
    np.testing.assert_array_equal(R.l1_penalty_grads(params, 2.0, 4)["W2"], [[0.5], [0.0]])


@pytest.mark.parametrize("kind", PAIRS)
def test_grads_keep_float32(kind):
    params = random_params(0, [3, 4, 2], dtype=np.float32)
    grads = PAIRS[kind][1](params, 0.1, 8)
    assert all(g.dtype == np.float32 for g in grads.values())


# --------------------------------------------------------------------------- early stopping

def test_early_stopping_patience_and_best():
    es = R.EarlyStopping(patience=2)
    params = {"W1": np.array([0.0])}
    decisions = []
    for epoch, loss in enumerate([5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 1.0]):
        params["W1"][0] = epoch
        decisions.append(es.step(loss, params))
    assert decisions == [False, False, False, False, False, True, False]
    assert es.best_loss == 1.0 and es.best_epoch == 6
    np.testing.assert_array_equal(es.best_params["W1"], [6.0])


def test_early_stopping_keeps_copies_not_references():
    es = R.EarlyStopping(patience=3)
    W = np.array([1.0, 2.0])
    es.step(1.0, {"W1": W})
    W[:] = 99.0  # an in-place update rule would do this
    np.testing.assert_array_equal(es.best_params["W1"], [1.0, 2.0])
    assert es.best_params["W1"] is not W


def test_early_stopping_min_delta():
    es = R.EarlyStopping(patience=2, min_delta=0.1)
    p = {"W1": np.zeros(1)}
    assert es.step(1.0, p) is False          # first call always improves on inf
    assert es.step(0.95, p) is False         # 0.95 is not < 1.0 - 0.1: no improvement (1)
    assert es.best_loss == 1.0 and es.best_epoch == 0
    assert es.step(0.85, p) is False         # 0.85 < 0.9: improvement, counter reset
    assert es.best_epoch == 2
    assert es.step(0.80, p) is False
    assert es.step(0.76, p) is True          # two calls without a 0.1 improvement


def test_early_stopping_nan_is_not_an_improvement():
    es = R.EarlyStopping(patience=1)
    es.step(1.0, {"W1": np.zeros(1)})
    assert es.step(float("nan"), {"W1": np.ones(1)}) is True
    assert es.best_loss == 1.0


def test_early_stopping_initial_state_and_validation():
    es = R.EarlyStopping(patience=3)
    assert es.best_loss == float("inf") and es.best_epoch is None and es.best_params is None
    with pytest.raises(ValueError):
        R.EarlyStopping(patience=0)
    with pytest.raises(ValueError):
        R.EarlyStopping(patience=2, min_delta=-1.0)
