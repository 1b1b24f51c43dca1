"""Inverted dropout (reference for notebook 04).

In training, every unit is kept with probability ``keep_prob`` and the kept units are
divided by ``keep_prob``, so the expected activation is unchanged and nothing needs
rescaling at test time, where dropout is the identity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x: np.ndarray, keep_prob: float, mode: str,
                    rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """Inverted dropout: ``out = x * mask / keep_prob`` with ``mask ~ Bernoulli(keep_prob)``.

    Parameters
    ----------
    x : array, any shape, e.g. activations (N, H).
    keep_prob : probability of keeping a unit, in (0, 1].
    mode : ``"train"`` (drop units) or ``"test"`` (identity).
    rng : numpy random Generator for the mask (not used in test mode).

    Returns
    -------
    out : array, shape and dtype of ``x`` (a new array in both modes).
    cache : ``(mask, mode)``; ``mask`` (shape of ``x``, dtype of ``x``) holds
        ``0`` or ``1 / keep_prob``, and is None in test mode or when ``keep_prob == 1``.
    """
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob!r}")
    if mode not in ("train", "test"):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    x = np.asarray(x)
    if mode == "test" or keep_prob == 1:
        return x.copy(), (None, mode)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    # Draw uniforms in x's precision; a bool mask times a scalar of that dtype keeps it.
    u = rng.random(x.shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    mask = (u < keep_prob) * dtype.type(1.0 / keep_prob)
    return x * mask, (mask, mode)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of :func:`dropout_forward`: ``dx = dout * mask / keep_prob``.

    Parameters
    ----------
    dout : array, shape of ``x``, upstream gradient.
    cache : ``(mask, mode)`` from the forward pass.

    Returns
    -------
    dx : array, shape of ``x`` (a new array).
    """
    mask, _mode = cache
    if mask is None:
        return np.array(dout, copy=True)
    return dout * mask
