"""What notebook 00 says about its experiments holds, checked on the references (fast versions) and, for the
step-size and kink experiments, on a second correct implementation that rounds differently (the functions draw no
random numbers)."""

import numpy as np
import pytest

from nnlab import gradcheck, layers
from nnlab.experiments import gradient_checking as exp

HS = np.logspace(-12, 0, 25)


def other_numerical_gradient(f, x, h=1e-5):
    # the coordinates in reverse order, the difference quotient written as two halves: other roundings
    grad = np.zeros_like(x)
    for i in reversed(range(x.size)):
        idx = np.unravel_index(i, x.shape)
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        grad[idx] = up / (2 * h) - down / (2 * h)
    return grad


def other_relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = np.sqrt(np.sum(a * a)) + np.sqrt(np.sum(b * b))
    return 0.0 if den == 0 else float(np.sqrt(np.sum((a - b) ** 2)) / den)


IMPLEMENTATIONS = {"reference": (gradcheck.numerical_gradient, gradcheck.relative_error),
                   "another implementation": (other_numerical_gradient, other_relative_error)}


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_float64_step_size_error_is_tiny_near_the_default_h(name):
    # "bottoms out below 1e-10 for h around 1e-5 (the default; between 1e-6 and 1e-4)"
    err = exp.step_size_errors(*IMPLEMENTATIONS[name], HS, dtype=np.float64)
    best_h = HS[np.argmin(err)]
    assert 1e-6 <= best_h <= 1e-4 and err.min() < 1e-10
    assert err[0] > 1e3 * err.min() and err[-1] > 1e3 * err.min()  # a V: rounding left, truncation right


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_float32_is_far_worse_and_wants_a_larger_h(name):
    # "the best error is only between 1e-6 and 1e-4, for h between 1e-3 and 1e-2, and at the float64 default
    #  h = 1e-5 it is between 1e-3 and 1e-1"
    err = exp.step_size_errors(*IMPLEMENTATIONS[name], HS, dtype=np.float32)
    best_h = HS[np.argmin(err)]
    assert 1e-3 <= best_h <= 1e-2
    assert 1e-6 < err.min() < 1e-4
    assert 1e-3 < err[np.argmin(np.abs(HS - 1e-5))] < 1e-1


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_kink_errors_are_order_one_only_within_h(name):
    offsets = np.concatenate([-np.logspace(-8, -2, 13)[::-1], np.logspace(-8, -2, 13)])
    err = exp.kink_errors(IMPLEMENTATIONS[name][0], offsets, h=1e-5)
    inside = np.abs(offsets) < 0.99e-5
    assert err[inside].min() > 0.3 and abs(err[inside].max() - 0.5) < 0.01
    assert err[np.abs(offsets) > 1.01e-5].max() < 1e-10


def test_initial_loss_is_log_c_within_one_percent():
    classes = [2, 3, 5, 10, 20, 50, 100]
    losses = exp.initial_losses(layers.softmax_cross_entropy, classes)
    assert np.all(np.abs(losses / np.log(classes) - 1) < 0.01)
    big = exp.initial_losses(layers.softmax_cross_entropy, [10], weight_scale=1.0)
    assert big[0] > 1.5 * np.log(10)  # large weights are not the log C sanity point


def test_whole_network_check_passes_in_float64_and_looks_broken_in_float32():
    e64 = exp.network_gradient_errors(layers.affine_forward, layers.affine_backward, layers.softmax_cross_entropy)
    e32 = exp.network_gradient_errors(layers.affine_forward, layers.affine_backward, layers.softmax_cross_entropy,
                                      dtype=np.float32)
    assert set(e64) == {"W1", "b1", "W2", "b2"}
    assert max(e64.values()) < 1e-8                                       # printed: "below 1e-8"
    assert min(e32.values()) > 1e-3 and max(e32.values()) < 1e-1          # "between 1e-3 and 1e-1"


def test_whole_network_check_catches_a_wrong_backward():
    def bad_backward(dout, cache):
        dx, dW, db = layers.affine_backward(dout, cache)
        return dx, dW, dout.mean(axis=0)
    errors = exp.network_gradient_errors(layers.affine_forward, bad_backward, layers.softmax_cross_entropy)
    assert errors["b1"] > 1e-2 and errors["b2"] > 1e-2 and errors["W2"] < 1e-6
