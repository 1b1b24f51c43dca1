"""Input standardization, batch normalization and layer normalization (references for notebook 05).

Shapes: ``X``/``x`` is ``(N, D)`` (N samples, D features); ``gamma``, ``beta`` and the
per-feature statistics are ``(D,)``. Backward never mutates ``dout`` or the cache; a
float32 input gives float32 outputs and gradients.
"""

from __future__ import annotations

from typing import Any, MutableMapping

import numpy as np

__all__ = [
    "standardize_fit", "standardize_apply",
    "batchnorm_forward", "batchnorm_backward",
    "layernorm_forward", "layernorm_backward",
]


def _float_dtype(x: np.ndarray) -> np.dtype:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


# --------------------------------------------------------------------------- standardization

def standardize_fit(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population standard deviation (``ddof=0``) of the training data.

    A constant feature gets std 1 (it is centred to exactly 0, not divided by 0).

    Parameters
    ----------
    X : (N, D) training data.

    Returns
    -------
    mean : (D,)
    std : (D,), positive.
    """
    X = np.asarray(X)
    X = X.astype(_float_dtype(X), copy=False)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    # Compare values exactly: a constant column's computed std can be 1e-17 instead of 0.
    constant = np.all(X == X[:1], axis=0) if X.shape[0] > 0 else np.ones(X.shape[1:], dtype=bool)
    std[constant | (std == 0)] = 1
    if X.shape[0] > 0:
        mean[constant] = X[0, constant]  # so that the constant feature maps to exactly 0
    return mean, std


def standardize_apply(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(X - mean) / std`` with statistics from :func:`standardize_fit` (on the training set).

    Parameters
    ----------
    X : (N, D) data, any split.
    mean, std : (D,) training statistics.

    Returns
    -------
    X_std : (N, D), dtype of ``X`` (float64 for an integer ``X``).
    """
    X = np.asarray(X)
    return ((X - mean) / std).astype(_float_dtype(X), copy=False)


# --------------------------------------------------------------------------- batch norm

def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      bn_param: MutableMapping[str, Any]) -> tuple[np.ndarray, tuple]:
    """Batch normalization: normalize every feature over the batch, then scale and shift.

    Train mode::

        mu = mean_n x,  var = mean_n (x - mu)^2          (biased, per feature)
        x_hat = (x - mu) / sqrt(var + eps),  out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var  = momentum * running_var  + (1 - momentum) * var

    Test mode uses ``running_mean`` and ``running_var`` instead of the batch statistics and
    changes nothing in ``bn_param``.

    Differences from ``torch.nn.functional.batch_norm``: the course's ``momentum`` is the
    weight of the old value (PyTorch's is the weight of the new one: ``1 - momentum``), and
    the running variance averages the biased batch variance that normalized the batch,
    where PyTorch averages the unbiased one (``N / (N - 1)`` times larger).

    Parameters
    ----------
    x : (N, D) inputs.
    gamma : (D,) scale.
    beta : (D,) shift.
    bn_param : dict, state kept between calls and updated in place (train mode):
        ``mode`` (``"train"`` or ``"test"``, default ``"train"``), ``eps`` (default 1e-5),
        ``momentum`` (default 0.9), ``running_mean`` (D,) (zeros if absent),
        ``running_var`` (D,) (ones if absent).

    Returns
    -------
    out : (N, D), dtype of ``x``.
    cache : what :func:`batchnorm_backward` needs: ``(mode, x_hat, gamma, inv_std)``.
    """
    x = np.asarray(x)
    dtype = _float_dtype(x)
    x = x.astype(dtype, copy=False)
    mode = bn_param.get("mode", "train")
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    D = x.shape[1]
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    running_mean = np.zeros(D, dtype=dtype) if running_mean is None else running_mean
    running_var = np.ones(D, dtype=dtype) if running_var is None else running_var

    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc * xc, axis=0)
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = xc * inv_std
        # New arrays, not in-place updates: a caller's reference to the old statistics stays valid.
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    elif mode == "test":  # the running statistics are read, never written: bn_param is left as it was
        inv_std = (1 / np.sqrt(running_var + eps)).astype(dtype, copy=False)
        x_hat = (x - np.asarray(running_mean).astype(dtype, copy=False)) * inv_std
    else:
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    out = x_hat * gamma + beta
    return out.astype(dtype, copy=False), (mode, x_hat, gamma, inv_std)


def batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`batchnorm_forward`.

    In train mode the batch statistics depend on every sample, which gives the compact form::

        dx = gamma * inv_std / N * (N * dout - sum_n dout - x_hat * sum_n (dout * x_hat))

    In test mode the statistics are constants: ``dx = dout * gamma * inv_std``.

    Parameters
    ----------
    dout : (N, D) upstream gradient.
    cache : from :func:`batchnorm_forward`.

    Returns
    -------
    dx : (N, D)
    dgamma : (D,)
    dbeta : (D,)
    """
    mode, x_hat, gamma, inv_std = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    if mode == "train":
        N = dout.shape[0]
        dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    else:
        dx = dout * (gamma * inv_std)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- layer norm

def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      ln_param: MutableMapping[str, Any] | None = None) -> tuple[np.ndarray, tuple]:
    """Layer normalization: normalize every sample over its features, then scale and shift.

    ::

        mu_n = mean_d x[n, d],  var_n = mean_d (x[n, d] - mu_n)^2
        x_hat = (x - mu) / sqrt(var + eps),  out = gamma * x_hat + beta

    The same computation in training and at test time; no running statistics.

    Parameters
    ----------
    x : (N, D) inputs.
    gamma : (D,) scale.
    beta : (D,) shift.
    ln_param : dict with ``eps`` (default 1e-5); other keys (such as ``mode``) are ignored.

    Returns
    -------
    out : (N, D), dtype of ``x``.
    cache : ``(x_hat, gamma, inv_std)`` with ``inv_std`` of shape (N, 1).
    """
    x = np.asarray(x)
    dtype = _float_dtype(x)
    x = x.astype(dtype, copy=False)
    eps = float((ln_param or {}).get("eps", 1e-5))
    mu = x.mean(axis=1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = xc * inv_std
    out = x_hat * gamma + beta
    return out.astype(dtype, copy=False), (x_hat, gamma, inv_std)


def layernorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`layernorm_forward`.

    Batch norm's formula with the roles of the axes swapped (statistics over the D features)::

        g = dout * gamma
        dx = inv_std / D * (D * g - sum_d g - x_hat * sum_d (g * x_hat))

    Parameters
    ----------
    dout : (N, D) upstream gradient.
    cache : from :func:`layernorm_forward`.

    Returns
    -------
    dx : (N, D)
    dgamma : (D,)
    dbeta : (D,)
    """
    x_hat, gamma, inv_std = cache
    D = dout.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    g = dout * gamma
    dx = (inv_std / D) * (D * g - g.sum(axis=1, keepdims=True)
                          - x_hat * np.sum(g * x_hat, axis=1, keepdims=True))
    return dx, dgamma, dbeta
