"""What notebook 00 says about its experiments holds, checked on the references (fast versions)."""

import numpy as np

from nnlab import gradcheck, layers
from nnlab.experiments import gradient_checking as exp

HS = np.logspace(-12, 0, 25)


def test_float64_step_size_error_is_tiny_near_the_default_h():
    err = exp.step_size_errors(gradcheck.numerical_gradient, gradcheck.relative_error, HS, dtype=np.float64)
    best_h = HS[np.argmin(err)]
    assert 1e-7 <= best_h <= 1e-4 and err.min() < 1e-10
    assert err[0] > 1e3 * err.min() and err[-1] > 1e3 * err.min()  # a V: rounding left, truncation right


def test_float32_is_far_worse_and_wants_a_larger_h():
    err = exp.step_size_errors(gradcheck.numerical_gradient, gradcheck.relative_error, HS, dtype=np.float32)
    best_h = HS[np.argmin(err)]
    assert 1e-3 <= best_h <= 1e-2
    assert 1e-6 < err.min() < 1e-4
    assert 1e-3 < err[np.argmin(np.abs(HS - 1e-5))] < 1e-1  # "several 1e-3" at the float64 default


def test_kink_errors_are_order_one_only_within_h():
    offsets = np.concatenate([-np.logspace(-8, -2, 13)[::-1], np.logspace(-8, -2, 13)])
    err = exp.kink_errors(gradcheck.numerical_gradient, offsets, h=1e-5)
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
    assert max(e64.values()) < 1e-6
    assert min(e32.values()) > 1e-3


def test_whole_network_check_catches_a_wrong_backward():
    def bad_backward(dout, cache):
        dx, dW, db = layers.affine_backward(dout, cache)
        return dx, dW, dout.mean(axis=0)
    errors = exp.network_gradient_errors(layers.affine_forward, bad_backward, layers.softmax_cross_entropy)
    assert errors["b1"] > 1e-2 and errors["b2"] > 1e-2 and errors["W2"] < 1e-6
