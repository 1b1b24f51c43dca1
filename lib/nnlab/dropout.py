"""Inverted dropout and random shifts (references for notebook 04): regularization by noise.

In training, every unit is kept with probability ``keep_prob`` and the kept units are
divided by ``keep_prob``, so the expected activation is unchanged and nothing needs
rescaling at test time, where dropout is the identity. :func:`random_shift` is a data
augmentation for images: every image moved by its own random offset, a new sample with the
same label.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dropout_forward", "dropout_backward", "random_shift"]


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


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image by its own random integer offset, filling the uncovered border with 0.

    Offsets ``dy`` (rows) and ``dx`` (columns) are drawn independently for every image,
    each uniform over the integers ``-max_shift, ..., max_shift``. A positive ``dy`` moves
    the content down, a positive ``dx`` to the right: ``out[i, r, c] = images[i, r - dy, c - dx]``
    where that pixel exists, 0 elsewhere.

    Parameters
    ----------
    images : (N, H, W) array.
    max_shift : largest offset, an integer >= 0 (0 returns a copy).
    rng : numpy random Generator for the offsets.

    Returns
    -------
    out : (N, H, W) new array, dtype of ``images``.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if int(max_shift) != max_shift or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    s = int(max_shift)
    N, H, W = images.shape
    offsets = rng.integers(-s, s + 1, size=(N, 2))
    dy, dx = offsets[:, 0], offsets[:, 1]
    rows = np.arange(H)[None, :] - dy[:, None]          # (N, H): source row of each output row
    cols = np.arange(W)[None, :] - dx[:, None]          # (N, W)
    valid = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    src = images[np.arange(N)[:, None, None], np.clip(rows, 0, H - 1)[:, :, None], np.clip(cols, 0, W - 1)[:, None, :]]
    return np.where(valid, src, np.zeros((), dtype=images.dtype)).astype(images.dtype, copy=False)
