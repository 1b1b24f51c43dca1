"""Numerical gradients and the relative error: how a backward pass is checked.

Reference implementations for notebook 00 (``numerical_gradient``,
``numerical_gradient_array``, ``relative_error``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of a scalar function.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h), one coordinate at a time.

    Parameters
    ----------
    f : callable taking ``x`` (any shape) and returning a scalar.
    x : array, any shape. Perturbed in place and restored before returning.
    h : step size.

    Returns
    -------
    grad : array, same shape and dtype as ``x``.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = float(f(x))
        x[i] = old - h
        f_minus = float(f(x))
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                             h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    This is what a backward pass computes for an array-valued ``f`` given the
    upstream gradient ``dout``.

    Parameters
    ----------
    f : callable taking ``x`` and returning an array of ``dout``'s shape.
    x : array, any shape. Perturbed in place and restored before returning.
    dout : array, shape of ``f(x)``.
    h : step size.

    Returns
    -------
    grad : array, same shape and dtype as ``x``.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.array(f(x), copy=True)
        x[i] = old - h
        neg = np.array(f(x), copy=True)
        x[i] = old
        grad[i] = np.sum((pos - neg) * dout) / (2 * h)
        it.iternext()
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)`` (Frobenius norms); 0.0 when both are zero.

    Scale-free: about 1e-7 or less is a correct float64 gradient, 1e-2 or more a bug.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(a - b) / denom)
