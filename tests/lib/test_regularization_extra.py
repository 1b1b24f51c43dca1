"""nnlab.regularization.EarlyStopping over many epochs, against an independent statement of the rule."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import regularization as R


def rule(losses, patience, min_delta):
    """The rule as COURSE.md states it: (stop, best_loss, best_epoch) after each call, up to the first stop."""
    out, best, best_epoch, since = [], math.inf, None, 0
    for epoch, loss in enumerate(losses):
        if loss < best - min_delta:
            best, best_epoch, since = loss, epoch, 0
        else:
            since += 1
        out.append((since >= patience, best, best_epoch))
        if since >= patience:
            break
    return out


losses_st = st.lists(st.one_of(st.floats(0, 5, allow_nan=False), st.sampled_from([1.0, 2.0, float("nan")])),
                     min_size=1, max_size=60)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(losses=losses_st, patience=st.integers(1, 6), min_delta=st.sampled_from([0.0, 0.01, 0.1, 0.5]))
def test_early_stopping_follows_the_rule_over_many_epochs(losses, patience, min_delta):
    es = R.EarlyStopping(patience, min_delta=min_delta)
    params = {"W1": np.zeros(3)}
    snapshots, trace = [], []
    for epoch, loss in enumerate(losses):
        params["W1"] += 1.0  # in place, as an in-place update rule would
        snapshots.append(params["W1"].copy())
        stop = es.step(loss, params)
        assert isinstance(stop, bool)
        trace.append((stop, es.best_loss, es.best_epoch))
        if es.best_epoch is not None:
            np.testing.assert_array_equal(es.best_params["W1"], snapshots[es.best_epoch])
        if stop:
            break
    assert trace == rule(losses, patience, min_delta)


@pytest.mark.parametrize("kind", ["l2", "l1"])
def test_penalties_of_float32_params_are_python_floats_and_leave_params_alone(kind):
    penalty, grads_fn = {"l2": (R.l2_penalty, R.l2_penalty_grads), "l1": (R.l1_penalty, R.l1_penalty_grads)}[kind]
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 4)).astype(np.float32), "b1": np.ones(4, np.float32),
              "gamma1": np.ones(4, np.float32), "beta1": np.ones(4, np.float32)}
    before = {k: v.copy() for k, v in params.items()}
    value = penalty(params, 0.5, 8)
    grads = grads_fn(params, 0.5, 8)
    assert type(value) is float
    w = params["W1"].astype(np.float64)
    expected = 0.5 / 16 * np.sum(w ** 2) if kind == "l2" else 0.5 / 8 * np.sum(np.abs(w))
    assert value == pytest.approx(expected, rel=1e-12)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
        assert grads[k] is not params[k] and grads[k].dtype == np.float32
        if k != "W1":
            assert not np.any(grads[k])
