"""Optimizer update rules, learning-rate schedules and minibatches (references for notebook 06).

An update rule is ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w`` : array, any shape, the current parameter; ``dw`` : gradient, shape of ``w``.
- ``config`` : dict of hyperparameters and optimizer state, created on the first call
  with the defaults below and returned (the same dict, updated) for the next call.
- ``next_w`` : a new array, shape and dtype of ``w``. The reference rules never modify
  ``w``, ``dw`` or the state arrays already in ``config`` (they store new ones); an
  implementation that updates ``w`` in place and returns it is just as correct.

Default learning rate 1e-2 for every rule but :func:`adam` (1e-3, as ``torch.optim.Adam``).

Every rule matches the corresponding ``torch.optim`` optimizer step for step
(``weight_decay=0``, ``dampening=0``, Adagrad's ``initial_accumulator_value=0`` and
``lr_decay=0``, RMSprop's ``alpha = decay_rate`` with ``centered=False``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

__all__ = [
    "sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam",
    "step_decay", "exponential_decay", "inverse_time_decay", "iterate_minibatches",
]

Config = dict[str, Any]
UpdateRule = Callable[[np.ndarray, np.ndarray, "Config | None"], "tuple[np.ndarray, Config]"]


def _defaults(config: Config | None, **defaults: Any) -> Config:
    """The config dict with every missing hyperparameter set to its default, checked."""
    if config is None:
        config = {}
    for key, value in defaults.items():
        config.setdefault(key, value)
    lr = config["learning_rate"]
    if not lr >= 0:
        raise ValueError(f"learning_rate must be >= 0, got {lr!r}")
    for key in ("momentum", "decay_rate", "beta1", "beta2"):
        if key in defaults and not 0 <= config[key] < 1:
            raise ValueError(f"{key} must be in [0, 1), got {config[key]!r}")
    if "epsilon" in defaults and not config["epsilon"] >= 0:
        raise ValueError(f"epsilon must be >= 0, got {config['epsilon']!r}")
    return config


def _state(config: Config, key: str, w: np.ndarray) -> np.ndarray:
    """Optimizer state array ``config[key]``, zeros of ``w``'s shape and dtype on the first call."""
    s = config.get(key)
    if s is None:
        s = np.zeros_like(w)
    return s


def _result(next_w: np.ndarray, w: np.ndarray) -> np.ndarray:
    return next_w.astype(w.dtype, copy=False)


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla stochastic gradient descent: ``w <- w - lr * dw``.

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (default 1e-2).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict.
    """
    config = _defaults(config, learning_rate=1e-2)
    # w + (-lr * dw) in one new array (bit-identical to w - lr * dw, one temporary fewer).
    next_w = np.multiply(dw, -config["learning_rate"], dtype=w.dtype)
    next_w += w
    return next_w, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """SGD with momentum, in PyTorch's form::

        v <- rho * v + dw
        w <- w - lr * v

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (1e-2), ``momentum`` rho (0.9) and
        ``velocity`` (shape of ``w``, zeros at first).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict, ``velocity`` updated.
    """
    config = _defaults(config, learning_rate=1e-2, momentum=0.9)
    v = config["momentum"] * _state(config, "velocity", w) + dw
    config["velocity"] = v
    return _result(w - config["learning_rate"] * v, w), config


def nesterov(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Nesterov momentum, as ``torch.optim.SGD(nesterov=True)`` computes it::

        v <- rho * v + dw
        w <- w - lr * (dw + rho * v)

    (the look-ahead gradient is folded into the update, so ``w`` stays the actual parameter).

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (1e-2), ``momentum`` rho (0.9) and
        ``velocity`` (shape of ``w``, zeros at first).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict, ``velocity`` updated.
    """
    config = _defaults(config, learning_rate=1e-2, momentum=0.9)
    rho = config["momentum"]
    v = rho * _state(config, "velocity", w) + dw
    config["velocity"] = v
    return _result(w - config["learning_rate"] * (dw + rho * v), w), config


def adagrad(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adagrad: per-coordinate step sizes that shrink with the sum of squared gradients::

        cache <- cache + dw^2
        w <- w - lr * dw / (sqrt(cache) + epsilon)

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (1e-2), ``epsilon`` (1e-8) and ``cache``
        (shape of ``w``, zeros at first).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict, ``cache`` updated.
    """
    config = _defaults(config, learning_rate=1e-2, epsilon=1e-8)
    cache = _state(config, "cache", w) + dw * dw
    config["cache"] = cache
    step = config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return _result(w - step, w), config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """RMSProp: a leaky average of squared gradients scales every coordinate's step::

        cache <- decay_rate * cache + (1 - decay_rate) * dw^2
        w <- w - lr * dw / (sqrt(cache) + epsilon)

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (1e-2), ``decay_rate`` (0.99, torch's ``alpha``),
        ``epsilon`` (1e-8) and ``cache`` (shape of ``w``, zeros at first).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict, ``cache`` updated.
    """
    config = _defaults(config, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8)
    rho = config["decay_rate"]
    cache = rho * _state(config, "cache", w) + (1 - rho) * (dw * dw)
    config["cache"] = cache
    step = config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return _result(w - step, w), config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam: momentum on the gradient and RMSProp scaling, both bias-corrected::

        t <- t + 1
        m <- beta1 * m + (1 - beta1) * dw
        v <- beta2 * v + (1 - beta2) * dw^2
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + epsilon)

    Parameters
    ----------
    w : array, any shape, parameter.
    dw : array, shape of ``w``, gradient.
    config : dict with ``learning_rate`` (1e-3, as ``torch.optim.Adam``), ``beta1`` (0.9), ``beta2`` (0.999),
        ``epsilon`` (1e-8), ``m`` and ``v`` (shape of ``w``, zeros at first) and ``t``
        (steps already taken, 0 at first; incremented before it is used).

    Returns
    -------
    next_w : array, shape and dtype of ``w``.
    config : the config dict, ``m``, ``v`` and ``t`` updated.
    """
    config = _defaults(config, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = int(config.get("t", 0)) + 1
    m = beta1 * _state(config, "m", w) + (1 - beta1) * dw
    v = beta2 * _state(config, "v", w) + (1 - beta2) * (dw * dw)
    config["m"], config["v"], config["t"] = m, v, t
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    step = config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return _result(w - step, w), config


# --------------------------------------------------------------------------- schedules

def step_decay(lr0: float, epoch: int, drop: float = 0.5, epochs_per_drop: int = 10) -> float:
    """Step decay ``lr0 * drop ** floor(epoch / epochs_per_drop)`` (epochs count from 0).

    Parameters
    ----------
    lr0 : initial learning rate.
    epoch : current epoch, 0 for the first.
    drop : factor applied every ``epochs_per_drop`` epochs.
    epochs_per_drop : epochs between drops (>= 1).

    Returns
    -------
    lr : float
    """
    if epochs_per_drop < 1:
        raise ValueError(f"epochs_per_drop must be >= 1, got {epochs_per_drop!r}")
    return float(lr0 * drop ** math.floor(epoch / epochs_per_drop))


def exponential_decay(lr0: float, epoch: int, k: float) -> float:
    """Exponential decay ``lr0 * exp(-k * epoch)`` (epochs count from 0).

    Parameters
    ----------
    lr0 : initial learning rate.
    epoch : current epoch, 0 for the first.
    k : decay rate.

    Returns
    -------
    lr : float
    """
    return float(lr0 * math.exp(-k * epoch))


def inverse_time_decay(lr0: float, epoch: int, k: float) -> float:
    """Inverse-time decay ``lr0 / (1 + k * epoch)`` (epochs count from 0).

    Parameters
    ----------
    lr0 : initial learning rate.
    epoch : current epoch, 0 for the first.
    k : decay rate.

    Returns
    -------
    lr : float
    """
    return float(lr0 / (1 + k * epoch))


# --------------------------------------------------------------------------- minibatches

def iterate_minibatches(X: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                        shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Minibatches covering every sample exactly once (one epoch).

    Parameters
    ----------
    X : (N, D) inputs.
    y : (N,) labels.
    batch_size : samples per batch (>= 1); the last batch has ``N % batch_size`` samples
        when that is not 0.
    rng : numpy random Generator for the order (unused, may be None, when ``shuffle`` is False).
    shuffle : visit the samples in a random order (True) or in their stored order (False).

    Yields
    ------
    X_batch : (B, D)
    y_batch : (B,)
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    N = len(X)
    if len(y) != N:
        raise ValueError(f"X has {N} samples but y has {len(y)}")
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs an rng (a numpy random Generator)")
        order = rng.permutation(N)
        for start in range(0, N, batch_size):
            idx = order[start:start + batch_size]
            yield X[idx], y[idx]
    else:
        for start in range(0, N, batch_size):
            yield X[start:start + batch_size], y[start:start + batch_size]
