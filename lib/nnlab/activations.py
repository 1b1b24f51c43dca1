"""Activation functions and softmax (references for notebook 01).

Every activation is a pair of pure functions, ``*_forward(x) -> (out, cache)`` and
``*_backward(dout, cache) -> dx``, applied elementwise to an array of any shape
(in the network: ``(N, H)``, N samples, H hidden units). Backward never mutates
``dout`` or the cache. A floating input keeps its dtype (float32 in, float32 out);
an integer input is promoted to float64.

All functions are numerically stable for ``|x|`` up to 1e3 and beyond: no overflow,
no ``inf``/``nan``, no floating-point warnings (harmless underflow to 0 aside).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "softplus_forward", "softplus_backward",
    "swish_forward", "swish_backward",
    "softmax",
]


def _as_float(x: np.ndarray) -> np.ndarray:
    """``x`` as a floating array: floats untouched (no copy), anything else float64."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) lies in (0, 1], so neither branch can overflow:
    # x >= 0: 1 / (1 + e^-x);  x < 0: e^x / (1 + e^x), both written with z = e^-|x|.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, z) / (1 + z)


# --------------------------------------------------------------------------- sigmoid

def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logistic sigmoid ``s(x) = 1 / (1 + e^{-x})``, elementwise.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).

    Returns
    -------
    out : array, shape and dtype of ``x``, values in [0, 1].
    cache : ``out`` (the derivative is ``s(x) (1 - s(x))``).
    """
    out = _sigmoid(_as_float(x))
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`sigmoid_forward`: ``dx = dout * s (1 - s)``.

    Parameters
    ----------
    dout : array, shape of the forward output, upstream gradient.
    cache : ``s(x)`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``.
    """
    s = cache
    return dout * (s * (1 - s))


# --------------------------------------------------------------------------- tanh

def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hyperbolic tangent, elementwise.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).

    Returns
    -------
    out : array, shape and dtype of ``x``, values in [-1, 1].
    cache : ``out`` (the derivative is ``1 - tanh(x)^2``).
    """
    out = np.tanh(_as_float(x))
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`tanh_forward`: ``dx = dout * (1 - tanh(x)^2)``.

    Parameters
    ----------
    dout : array, shape of the forward output.
    cache : ``tanh(x)`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``.
    """
    t = cache
    return dout * (1 - t * t)


# --------------------------------------------------------------------------- relu

def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectified linear unit ``max(0, x)``, elementwise.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).

    Returns
    -------
    out : array, shape and dtype of ``x``.
    cache : ``x``.
    """
    x = _as_float(x)
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`relu_forward`: ``dx = dout * [x > 0]``.

    The gradient is 0 where ``x == 0`` (the subgradient PyTorch uses).

    Parameters
    ----------
    dout : array, shape of ``x``.
    cache : ``x`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``, dtype of ``dout``.
    """
    x = cache
    # Multiplying by the boolean mask is several times faster than np.where here.
    return dout * (x > 0)


# --------------------------------------------------------------------------- leaky relu

def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """Leaky ReLU ``x`` for ``x > 0``, ``alpha * x`` otherwise, elementwise.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).
    alpha : slope for ``x <= 0``.

    Returns
    -------
    out : array, shape and dtype of ``x``.
    cache : ``(x, alpha)``.
    """
    x = _as_float(x)
    alpha = float(alpha)  # a Python float never promotes float32 to float64
    return np.where(x > 0, x, alpha * x), (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of :func:`leaky_relu_forward`: slope 1 for ``x > 0``, else ``alpha``.

    At ``x == 0`` the gradient is ``alpha`` (as in PyTorch).

    Parameters
    ----------
    dout : array, shape of ``x``.
    cache : ``(x, alpha)`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``, dtype of ``dout``.
    """
    x, alpha = cache
    return np.where(x > 0, dout, alpha * dout)


# --------------------------------------------------------------------------- softplus

def softplus_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softplus ``log(1 + e^x)``, elementwise, computed as ``max(x, 0) + log1p(e^{-|x|})``.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).

    Returns
    -------
    out : array, shape and dtype of ``x``, positive.
    cache : ``x`` (the derivative is ``sigmoid(x)``).
    """
    x = _as_float(x)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))), x


def softplus_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`softplus_forward`: ``dx = dout * sigmoid(x)``.

    Parameters
    ----------
    dout : array, shape of ``x``.
    cache : ``x`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``.
    """
    x = cache
    return dout * _sigmoid(x)


# --------------------------------------------------------------------------- swish

def swish_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Swish (SiLU) ``x * sigmoid(x)``, elementwise.

    Parameters
    ----------
    x : array, any shape, e.g. (N, H).

    Returns
    -------
    out : array, shape and dtype of ``x``.
    cache : ``(x, sigmoid(x))``.
    """
    x = _as_float(x)
    s = _sigmoid(x)
    return x * s, (x, s)


def swish_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of :func:`swish_forward`.

    ``d/dx [x s(x)] = s + x s (1 - s) = s (1 + x (1 - s))``.

    Parameters
    ----------
    dout : array, shape of ``x``.
    cache : ``(x, sigmoid(x))`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x``.
    """
    x, s = cache
    return dout * (s * (1 + x * (1 - s)))


# --------------------------------------------------------------------------- softmax

def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``: ``e^{x_i} / sum_j e^{x_j}``.

    The maximum along ``axis`` is subtracted first, so no exponent is positive and
    nothing overflows; the result is unchanged because softmax is shift invariant.

    Parameters
    ----------
    x : array, any shape, e.g. scores (N, C).
    axis : the axis that sums to 1.

    Returns
    -------
    probs : array, shape and dtype of ``x``, nonnegative, summing to 1 along ``axis``.
    """
    x = _as_float(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
