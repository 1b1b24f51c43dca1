"""Affine layer and softmax cross-entropy loss (references for notebook 00).

Every differentiable operation is a pair: ``op_forward(...) -> (out, cache)`` and
``op_backward(dout, cache) -> grads``. Backward never mutates ``dout`` or the cache.
"""

from __future__ import annotations

import numpy as np


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fully connected layer ``out = x @ W + b``.

    Parameters
    ----------
    x : (N, D) inputs.
    W : (D, M) weights.
    b : (M,) biases.

    Returns
    -------
    out : (N, M)
    cache : (x, W, b)
    """
    out = x @ W + b
    return out, (x, W, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : (N, M) upstream gradient.
    cache : (x, W, b) from the forward pass.

    Returns
    -------
    dx : (N, D), dW : (D, M), db : (M,)
    """
    x, W, b = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of a softmax over class scores, and its gradient.

    ``loss = -(1/N) sum_i log softmax(scores_i)[y_i]``, computed with the
    log-sum-exp trick so that scores of any magnitude are safe.

    Parameters
    ----------
    scores : (N, C) unnormalized class scores.
    y : (N,) int labels in ``[0, C)``.

    Returns
    -------
    loss : float
    dscores : (N, C) gradient of ``loss`` with respect to ``scores``.
    """
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    dscores /= n
    return float(loss), dscores
