"""Stand-ins for later notebooks' exercises that the library runs at an earlier stage (the student edition only).

``course.student_edition`` copies this file into a stage's edition as ``nnlab/_standins.py``, keeping the
functions that stand for the exercises of the notebooks after the stage (``STAND_INS`` there). None of them is the
exercise's answer; each is a way to compute the same thing that the exercise does not ask for:

- ``relu_*``, ``tanh_*``: PyTorch's own functions, and autograd for the backward pass. The derivative's formula,
  the point of notebook 01's exercises, appears nowhere. ReLU's values are the reference's bit for bit; tanh's
  within a unit in the last place (another libm).
- ``adam``: ``torch.optim.Adam`` steps a copy of the parameter; the bias correction, notebook 06's point, is
  PyTorch's. Within a few units in the last place of the reference per step.
- ``he_init``, ``xavier_init``, ``random_init``: ``rng.normal`` with the standard deviation that notebook 02's
  text states (the formula is the exercise's statement, there is nothing else to it); the same draws as the
  reference, so every network starts where the solutions' did.
- ``sgd``, ``sgd_momentum``: the update that notebook 06's text writes out (``w - lr dw``; ``v = rho v + dw``,
  ``w - lr v``), without the exercise's contract (no defaults check, the state under a private key), bit for bit
  the reference's steps, so the trainer's numbers are the solutions'.
- ``iterate_minibatches``: ``rng.permutation`` then scikit-learn's ``gen_batches``: the reference's batches.

and two helpers of the visible tests at stage 00, when ``numerical_gradient_array`` and ``relative_error`` are
the exercises being done: SciPy's central differences, and the largest entry of the difference relative to the
largest entries (a different error from the exercise's Frobenius one; the same verdicts on a gradient).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np


def _floating(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _torch_grad(fn: Callable, x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.array(x, copy=True)).requires_grad_(True)
    fn(t).backward(torch.from_numpy(np.ascontiguousarray(np.asarray(dout, dtype=x.dtype))))
    return t.grad.numpy()


def _torch_apply(fn: Callable, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return fn(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def relu_forward(x: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch

    x = _floating(x)
    return _torch_apply(torch.relu, x), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    import torch

    return _torch_grad(torch.relu, cache, dout)


def tanh_forward(x: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch

    x = _floating(x)
    return _torch_apply(torch.tanh, x), x


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    import torch

    return _torch_grad(torch.tanh, cache, dout)


def random_init(fan_in: int, fan_out: int, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    return rng.normal(scale=scale, size=(fan_in, fan_out))


def xavier_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(scale=np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def he_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(scale=np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    config = {} if config is None else config
    step = np.multiply(dw, config.setdefault("learning_rate", 1e-2), dtype=w.dtype)
    return np.subtract(w, step, dtype=w.dtype), config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    config = {} if config is None else config
    lr, rho = config.setdefault("learning_rate", 1e-2), config.setdefault("momentum", 0.9)
    config["_v"] = rho * config.get("_v", np.zeros_like(w)) + dw
    return (w - lr * config["_v"]).astype(w.dtype, copy=False), config


def adam(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    import torch

    config = {} if config is None else config
    lr = config.setdefault("learning_rate", 1e-3)
    betas = (config.setdefault("beta1", 0.9), config.setdefault("beta2", 0.999))
    param = torch.from_numpy(np.array(w, copy=True))
    param.grad = torch.from_numpy(np.ascontiguousarray(np.asarray(dw, dtype=w.dtype)))
    optimizer = torch.optim.Adam([param], lr=lr, betas=betas, eps=config.setdefault("epsilon", 1e-8), foreach=False)
    if "_torch" in config:
        optimizer.load_state_dict(config["_torch"])
        for group in optimizer.param_groups:  # the learning rate of this call, not the saved one
            group["lr"] = lr
    optimizer.step()
    config["_torch"] = optimizer.state_dict()
    return param.numpy(), config


def iterate_minibatches(X: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                        shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from sklearn.utils import gen_batches

    order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
    for part in gen_batches(len(X), int(batch_size)):
        yield X[order[part]], y[order[part]]


def scipy_numerical_gradient_array(f: Callable, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    from scipy.optimize._numdiff import approx_derivative

    x = np.asarray(x, dtype=np.float64)
    shape = x.shape

    def total(v: np.ndarray) -> float:
        return float(np.sum(np.asarray(f(v.reshape(shape)), dtype=np.float64) * dout))

    return np.asarray(approx_derivative(total, x.ravel(), method="3-point", abs_step=h)).reshape(shape)


def max_relative_error(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(a), initial=0.0) + np.max(np.abs(b), initial=0.0)
    return float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else 0.0
