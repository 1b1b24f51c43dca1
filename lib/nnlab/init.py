"""Weight initialization schemes (references for notebook 02).

An initializer is ``init_fn(fan_in, fan_out, rng) -> W`` with ``W`` of shape
``(fan_in, fan_out)`` (float64), drawing from the ``numpy.random.Generator`` it is
given and never from global random state.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["zeros_init", "random_init", "xavier_init", "he_init", "init_params"]

InitFn = Callable[[int, int, np.random.Generator], np.ndarray]


def _check_fans(fan_in: int, fan_out: int) -> None:
    if int(fan_in) < 1 or int(fan_out) < 1:
        raise ValueError(f"fan_in and fan_out must be positive, got {fan_in} and {fan_out}")


def zeros_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """All-zero weights (a bad idea: every hidden unit of a layer stays identical).

    Parameters
    ----------
    fan_in, fan_out : layer input size D_in and output size D_out.
    rng : unused; present so that every initializer has the same signature.

    Returns
    -------
    W : (fan_in, fan_out) float64 zeros.
    """
    _check_fans(fan_in, fan_out)
    return np.zeros((fan_in, fan_out))


def random_init(fan_in: int, fan_out: int, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Gaussian weights with a fixed standard deviation: ``W ~ N(0, scale^2)``.

    Parameters
    ----------
    fan_in, fan_out : layer input size D_in and output size D_out.
    rng : numpy random Generator.
    scale : standard deviation of every weight.

    Returns
    -------
    W : (fan_in, fan_out) float64.
    """
    _check_fans(fan_in, fan_out)
    return scale * rng.standard_normal((fan_in, fan_out))


def xavier_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Xavier/Glorot normal initialization: ``W ~ N(0, 2 / (fan_in + fan_out))``.

    Keeps the variance of activations and of gradients roughly constant across
    layers for symmetric activations such as tanh (Glorot & Bengio, 2010).

    Parameters
    ----------
    fan_in, fan_out : layer input size D_in and output size D_out.
    rng : numpy random Generator.

    Returns
    -------
    W : (fan_in, fan_out) float64.
    """
    _check_fans(fan_in, fan_out)
    return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))


def he_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """He/Kaiming normal initialization: ``W ~ N(0, 2 / fan_in)``.

    Compensates for ReLU zeroing half of its inputs (He et al., 2015).

    Parameters
    ----------
    fan_in, fan_out : layer input size D_in and output size D_out.
    rng : numpy random Generator.

    Returns
    -------
    W : (fan_in, fan_out) float64.
    """
    _check_fans(fan_in, fan_out)
    return np.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))


def init_params(layer_sizes: Sequence[int], init_fn: InitFn, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Parameters of a fully connected net: weights from ``init_fn``, biases zero.

    Parameters
    ----------
    layer_sizes : ``[D, H1, ..., C]``, the width of every layer, input first.
    init_fn : ``init_fn(fan_in, fan_out, rng) -> W``.
    rng : numpy random Generator passed to ``init_fn``, layer by layer, first layer first.

    Returns
    -------
    params : dict with ``"W1"`` (D, H1), ``"b1"`` (H1,), ..., ``"WL"`` (H_{L-1}, C), ``"bL"`` (C,).
    """
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {list(layer_sizes)}")
    params: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = np.asarray(init_fn(fan_in, fan_out, rng))
        params[f"b{i}"] = np.zeros(fan_out)
    return params
