"""Experiments of notebook 00: step size, kinks, and the initial-loss sanity check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def step_size_errors(numerical_gradient: Callable, relative_error: Callable, hs: np.ndarray,
                     dtype: type = np.float64, seed: int = 0, dim: int = 10) -> np.ndarray:
    """Relative error of the numerical gradient of ``f(x) = sum(tanh(x))`` for each step ``h``.

    The exact gradient is ``1 - tanh(x)^2``. ``x`` (shape ``(dim,)``) and every
    evaluation of ``f`` are in ``dtype``, as a float32 network would compute them.

    Returns
    -------
    errors : (len(hs),) float64
    """
    x = np.random.default_rng(seed).uniform(-2, 2, size=dim).astype(dtype)
    exact = 1 - np.tanh(x.astype(np.float64)) ** 2
    f = lambda v: np.sum(np.tanh(v), dtype=dtype)  # noqa: E731
    return np.array([relative_error(numerical_gradient(f, x, h=dtype(h)).astype(np.float64), exact)
                     for h in hs])


def kink_errors(numerical_gradient: Callable, offsets: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Absolute error of the numerical derivative of ``relu(x) = max(0, x)`` at ``x = offset``.

    Where ``|offset| < h`` the two evaluation points straddle the kink at 0 and the
    central difference returns a value between 0 and 1 that is neither one-sided slope.

    Returns
    -------
    errors : (len(offsets),) float64, |numerical - exact| with exact = 1 for x > 0 and 0 for x < 0.
    """
    errors = []
    for x0 in offsets:
        x = np.array([x0], dtype=np.float64)
        numeric = numerical_gradient(lambda v: float(np.maximum(v, 0).sum()), x, h=h)[0]
        errors.append(abs(numeric - (1.0 if x0 > 0 else 0.0)))
    return np.array(errors)


def initial_losses(loss_fn: Callable, num_classes: list[int], seed: int = 0, n: int = 500, dim: int = 64,
                   weight_scale: float = 1e-3) -> np.ndarray:
    """The loss of a freshly initialised linear classifier (small random weights) for C classes.

    ``loss_fn(scores (n, C), y (n,)) -> (loss, dscores)``. With weights near 0 every
    class gets probability about 1/C, so the loss is about ``log C``.

    Returns
    -------
    losses : (len(num_classes),) float64
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    out = []
    for c in num_classes:
        W = weight_scale * rng.standard_normal((dim, c))
        y = rng.integers(0, c, size=n)
        out.append(loss_fn(X @ W, y)[0])
    return np.array(out, dtype=np.float64)


def network_gradient_errors(affine_forward: Callable, affine_backward: Callable, loss_fn: Callable,
                            dtype: type = np.float64, seed: int = 0) -> dict[str, float]:
    """Relative error between backprop and numerical gradients for every parameter of a small net.

    A two-layer tanh network (5 -> 7 -> 3, 6 samples) built by :class:`nnlab.network.FullyConnectedNet`
    with the given affine layer and loss plugged in, all in ``dtype``. The numerical gradient uses
    ``h = 1e-5`` in both dtypes, as a naive check would.

    Returns
    -------
    errors : dict parameter name -> relative error
    """
    from nnlab.activations import tanh_backward, tanh_forward
    from nnlab.gradcheck import numerical_gradient, relative_error
    from nnlab.network import FullyConnectedNet

    rng = np.random.default_rng(seed)
    net = FullyConnectedNet([5, 7, 3], activation=(tanh_forward, tanh_backward),
                            affine=(affine_forward, affine_backward), loss=loss_fn, rng=rng, dtype=dtype)
    X = rng.standard_normal((6, 5)).astype(dtype)
    y = rng.integers(0, 3, size=6)
    _, grads = net.loss(X, y)
    errors = {}
    for name, p in net.params.items():
        numeric = numerical_gradient(lambda _: net.loss(X, y)[0], p, h=dtype(1e-5))
        errors[name] = relative_error(grads[name].astype(np.float64), numeric.astype(np.float64))
    return errors
