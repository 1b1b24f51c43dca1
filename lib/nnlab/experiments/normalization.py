"""Experiments of notebook 05: input standardization, batch norm across learning rates and weight scales,
batch norm vs layer norm at small batch sizes, and the running averages early in training.

The student's ``standardize_fit``/``standardize_apply`` standardize the inputs; the student's
``(forward, backward)`` pairs are plugged into :class:`nnlab.network.FullyConnectedNet` as its
``normalization``. Everything is deterministic given the seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nnlab import data as _data
from nnlab import optim
from nnlab.experiments.seeds import run_all
from nnlab.network import FullyConnectedNet
from nnlab.trainer import evaluate

Pair = tuple[Callable[..., Any], Callable[..., Any]]


# --------------------------------------------------------------------------- 1. standardization

def two_feature_problem(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A linear regression with two features on very different scales.

    ``x1`` is an area in square metres (mean 100, std 30), ``x2`` a number of rooms (mean 3,
    std 1); the target is ``y = 0.03 * x1 + 0.5 * x2 - 2 + noise``.

    Returns
    -------
    X : (n, 2), y : (n,).
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(100.0, 30.0, n)
    x2 = np.clip(np.round(rng.normal(3.0, 1.0, n) + 0.01 * (x1 - 100)), 1, None)
    X = np.column_stack([x1, x2])
    y = 0.03 * x1 + 0.5 * x2 - 2.0 + rng.normal(0.0, 0.3, n)
    return X, y


def mse(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """Half the mean squared error of ``X @ w + b``, for one ``w`` (2,) or a grid of them (..., 2)."""
    w = np.asarray(w, dtype=np.float64)
    pred = np.tensordot(w, X.T, axes=([-1], [0])) + np.asarray(b)[..., None]
    return 0.5 * np.mean((pred - y) ** 2, axis=-1)


def gradient_descent(X: np.ndarray, y: np.ndarray, num_steps: int, lr_fraction: float = 0.5) -> dict[str, Any]:
    """Full-batch gradient descent on ``mse`` over (w1, w2, b), from zero.

    The learning rate is ``lr_fraction * 2 / lambda_max`` of the loss's Hessian (``1 / lambda_max`` by
    default, the step that takes the steepest direction to its minimum at once; above ``2 / lambda_max``
    gradient descent diverges), so that the number of steps reflects the shape of the loss, not a badly
    chosen learning rate.

    Returns
    -------
    dict with ``path`` (num_steps + 1, 3) of (w1, w2, b), ``loss`` (num_steps + 1,), ``lr``,
    ``condition`` (the Hessian's condition number), ``slowest_factor`` (``1 - lr * lambda_min``: each step
    multiplies the error along the flattest direction by it), ``optimum`` (3,) and ``best_loss``.
    """
    A = np.column_stack([X, np.ones(len(X))])
    H = A.T @ A / len(X)
    eig = np.linalg.eigvalsh(H)
    lr = lr_fraction * 2 / eig[-1]
    theta = np.zeros(3)
    path = [theta.copy()]
    for _ in range(num_steps):
        theta = theta - lr * (A.T @ (A @ theta - y) / len(X))
        path.append(theta.copy())
    path_arr = np.array(path)
    loss = 0.5 * np.mean((path_arr @ A.T - y) ** 2, axis=1)
    optimum = np.linalg.lstsq(A, y, rcond=None)[0]
    return {"path": path_arr, "loss": loss, "lr": float(lr), "condition": float(eig[-1] / eig[0]),
            "slowest_factor": float(1 - lr * eig[0]),
            "optimum": optimum, "best_loss": float(0.5 * np.mean((A @ optimum - y) ** 2))}


def steps_to_reach(loss: np.ndarray, best: float, rel_gap: float = 0.01) -> int | None:
    """The first step whose loss is within ``rel_gap`` of the optimum ``best`` (None: never)."""
    hit = np.flatnonzero(np.asarray(loss) <= best * (1 + rel_gap))
    return int(hit[0]) if hit.size else None


def standardization_paths(standardize_fit: Callable, standardize_apply: Callable, num_steps: int = 100,
                          seed: int = 0) -> dict[str, dict[str, Any]]:
    """Gradient descent on the raw and on the standardized two-feature problem.

    Returns
    -------
    dict ``"raw"`` and ``"standardized"`` -> :func:`gradient_descent`'s result plus ``X``, ``y`` and
    ``steps`` (steps to within 1% of the optimal loss, None if not within ``num_steps``).
    """
    X, y = two_feature_problem(seed=seed)
    mean, std = standardize_fit(X)
    Xs = standardize_apply(X, mean, std)
    out = {}
    for name, features in (("raw", X), ("standardized", np.asarray(Xs, dtype=np.float64))):
        run = gradient_descent(features, y, num_steps)
        run.update(X=features, y=y, steps=steps_to_reach(run["loss"], run["best_loss"]))
        out[name] = run
    out["standardized"]["mean"], out["standardized"]["std"] = np.asarray(mean), np.asarray(std)
    return out


# --------------------------------------------------------------------------- networks on the digits

def digits(seed: int = 0) -> dict[str, np.ndarray]:
    """The 8x8 digits, 60 / 20 / 20 (1079 / 359 / 359 images), pixels in [0, 1]."""
    return _data.load_digits(np.random.default_rng(seed))


def scaled_gaussian_init(scale: float) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    """``W ~ scale * N(0, 1)`` whatever the layer's width (so that a bad scale really is bad)."""
    def init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return scale * rng.standard_normal((fan_in, fan_out))
    init.__name__ = f"gaussian_{scale:g}"
    return init


def make_net(normalization: Pair | None, hidden: Sequence[int] = (100, 100, 100), *, init: Any = "he",
             seed: int = 0) -> FullyConnectedNet:
    return FullyConnectedNet([64, *hidden, 10], normalization=normalization, init=init,
                             rng=np.random.default_rng(seed))


def train_steps(net: FullyConnectedNet, data: Mapping[str, np.ndarray], *, num_epochs: int, batch_size: int,
                lr: float, update_rule: Callable = optim.sgd_momentum, seed: int = 1,
                on_step: Callable[[FullyConnectedNet, np.ndarray, int], None] | None = None) -> dict[str, Any]:
    """Minibatch training; stops at the first non-finite loss (a diverged run).

    ``on_step(net, X_batch, step)`` is called before each step's forward pass.

    Returns
    -------
    dict with ``loss`` (the minibatch losses), ``diverged`` (bool), ``steps``.
    """
    rng = np.random.default_rng(seed)
    configs = {k: {"learning_rate": lr} for k in net.params}
    losses: list[float] = []
    step = 0
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        for _ in range(num_epochs):
            for X_batch, y_batch in optim.iterate_minibatches(data["X_train"], data["y_train"], batch_size, rng):
                if on_step is not None:
                    on_step(net, X_batch, step)
                loss, grads = net.loss(X_batch, y_batch)
                losses.append(loss)
                if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads.values()):
                    return {"loss": losses, "diverged": True, "steps": step + 1}
                for k, w in net.params.items():
                    net.params[k], configs[k] = update_rule(w, grads[k], configs[k])
                step += 1
    return {"loss": losses, "diverged": False, "steps": step}


def _final_loss(net: FullyConnectedNet, data: Mapping[str, np.ndarray]) -> tuple[float, float]:
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        loss, _ = evaluate(net, data["X_train"], data["y_train"])
        _, val_acc = evaluate(net, data["X_val"], data["y_val"])
    return loss, val_acc


# --------------------------------------------------------------------------- 2. learning rate x weight scale

def lr_scale_grid(normalizations: Mapping[str, Pair | None], lrs: Sequence[float], scales: Sequence[float],
                  data: Mapping[str, np.ndarray] | None = None, num_epochs: int = 3, batch_size: int = 50,
                  seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Train a 64-100-100-100-10 ReLU net (plain SGD) for every learning rate and weight scale.

    Returns
    -------
    dict name -> {``"loss"``: (len(scales), len(lrs)) final training loss (test mode; inf when the run
    diverged or the loss is not finite), ``"val_acc"``: the same grid of dev accuracies (0 when diverged)}.
    """
    data = digits(seed) if data is None else data
    out = {}
    for name, norm in normalizations.items():
        loss = np.full((len(scales), len(lrs)), np.inf)
        acc = np.zeros((len(scales), len(lrs)))
        for i, scale in enumerate(scales):
            for j, lr in enumerate(lrs):
                net = make_net(norm, init=scaled_gaussian_init(scale), seed=seed)
                run = train_steps(net, data, num_epochs=num_epochs, batch_size=batch_size, lr=lr,
                                  update_rule=optim.sgd, seed=seed + 1)
                if not run["diverged"]:
                    final, val_acc = _final_loss(net, data)
                    if np.isfinite(final):
                        loss[i, j], acc[i, j] = final, val_acc
        out[name] = {"loss": loss, "val_acc": acc}
    return out


def lr_scale_grid_seeds(normalizations: Mapping[str, Pair | None], lrs: Sequence[float], scales: Sequence[float],
                        seeds: Sequence[int] = (0, 1, 2), processes: int | None = None,
                        **kw: Any) -> dict[str, dict[str, np.ndarray]]:
    """:func:`lr_scale_grid` once per seed (the data split, the weights and the batches), one worker process per
    seed and normalization where the platform forks (the same results as one after the other).

    Returns
    -------
    dict name -> {``"loss"``, ``"val_acc"``}: (len(seeds), len(scales), len(lrs)) arrays.
    """
    names = list(normalizations)
    jobs = [lambda s=s, n=n: lr_scale_grid({n: normalizations[n]}, lrs, scales, seed=s, **kw)[n]
            for s in seeds for n in names]
    runs = run_all(jobs, processes)
    return {n: {key: np.stack([runs[i * len(names) + k][key] for i in range(len(seeds))])
                for key in ("loss", "val_acc")} for k, n in enumerate(names)}


# --------------------------------------------------------------------------- 3. batch size

def batch_size_runs(normalizations: Mapping[str, Pair | None], batch_sizes: Sequence[int],
                    data: Mapping[str, np.ndarray] | None = None, num_epochs: int = 4, lr: float = 0.02,
                    seed: int = 0) -> dict[str, dict[int, dict[str, float]]]:
    """The same 64-100-100-10 net (SGD with momentum) trained with each normalization at each batch size.

    Every run sees the training set ``num_epochs`` times (so small batches take more steps).

    Returns
    -------
    dict name -> batch size -> {``"val_acc"``: dev accuracy in test mode, ``"val_acc_batch"``: dev accuracy
    when the dev set is cut into batches of the same size and normalized with each batch's own statistics
    (train mode, running averages untouched), ``"train_loss"``}.
    """
    data = digits(seed) if data is None else data
    out: dict[str, dict[int, dict[str, float]]] = {}
    for name, norm in normalizations.items():
        out[name] = {}
        for bs in batch_sizes:
            net = make_net(norm, hidden=(100, 100), seed=seed)
            train_steps(net, data, num_epochs=num_epochs, batch_size=bs, lr=lr, seed=seed + 1)
            train_loss, val_acc = _final_loss(net, data)
            out[name][bs] = {"val_acc": val_acc, "train_loss": train_loss,
                             "val_acc_batch": batch_mode_accuracy(net, data["X_val"], data["y_val"], bs)}
    return out


def batch_size_seeds(normalizations: Mapping[str, Pair | None], batch_sizes: Sequence[int],
                     seeds: Sequence[int] = (0, 1, 2), processes: int | None = None,
                     **kw: Any) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """:func:`batch_size_runs` once per seed (the seed draws the data split, the weights and the batches), in
    worker processes where the platform forks (the same results as one after the other).

    Returns
    -------
    dict name -> batch size -> {``"val_acc"``, ``"val_acc_batch"``, ``"train_loss"``}: (len(seeds),) arrays.
    """
    runs = run_all([lambda s=s: batch_size_runs(normalizations, batch_sizes, seed=s, **kw) for s in seeds],
                   processes)
    return {name: {bs: {key: np.array([r[name][bs][key] for r in runs]) for key in runs[0][name][bs]}
                   for bs in batch_sizes} for name in normalizations}


def advantage(res: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], name: str, batch_size: int,
              key: str = "val_acc") -> np.ndarray:
    """Per seed, ``name``'s ``key`` minus the best of the other normalizations' at ``batch_size`` (> 0: it wins)."""
    others = np.max([r[batch_size][key] for other, r in res.items() if other != name], axis=0)
    return res[name][batch_size][key] - others


def initial_loss(normalization: Pair | None, scale: float, data: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, output_scale: float | None = None) -> float:
    """Training loss of :func:`lr_scale_grid`'s network before its first step (train mode, whole training set).

    ``output_scale``: the output layer's weights drawn at this scale instead of ``scale`` (the same draw, rescaled).
    """
    data = digits(seed) if data is None else data
    net = make_net(normalization, init=scaled_gaussian_init(scale), seed=seed)
    if output_scale is not None:
        out = f"W{net.num_layers}"
        net.params[out] = net.params[out] * (output_scale / scale)
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        loss, _ = net.loss(data["X_train"], data["y_train"])
    return float(loss)


def batch_mode_accuracy(net: FullyConnectedNet, X: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Accuracy when each batch of ``batch_size`` samples is normalized with its own statistics (train mode).

    The network's running averages are left as they were.
    """
    saved = [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in p.items()} for p in net.bn_params]
    correct = 0
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        for s in range(0, len(X), batch_size):
            scores = net.loss(X[s:s + batch_size], mode="train")
            correct += int(np.sum(np.argmax(scores, axis=1) == y[s:s + batch_size]))
    for p, old in zip(net.bn_params, saved):
        p.clear()
        p.update(old)
    return correct / len(X)


# --------------------------------------------------------------------------- 4. running averages

def running_average_gap(batchnorm: Pair, data: Mapping[str, np.ndarray] | None = None, num_steps: int = 120,
                        eval_every: int = 4, batch_size: int = 50, lr: float = 0.05,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """Batch statistics vs running averages of the first hidden layer during the first steps of training.

    Returns
    -------
    dict with ``step`` (num_steps,), ``mean_gap`` and ``var_gap`` (num_steps,): the mean over the units of
    ``|batch mean - running_mean| / batch std`` and of ``|log(batch var / running_var)|`` just before each
    step's forward pass; ``eval_step`` and, at those steps, ``acc_test_mode`` (dev accuracy with the running
    averages) and ``acc_batch_stats`` (dev accuracy with the statistics of the whole dev set as one batch);
    ``acc_one_sample`` (dev accuracy at the end when each image is classified alone in train mode).
    """
    data = digits(seed) if data is None else data
    net = make_net(batchnorm, hidden=(100, 100), seed=seed)
    mean_gap = np.zeros(num_steps)
    var_gap = np.zeros(num_steps)
    eval_steps, acc_test, acc_batch = [], [], []
    X_val, y_val = data["X_val"], data["y_val"]

    def on_step(net: FullyConnectedNet, X_batch: np.ndarray, step: int) -> None:
        if step >= num_steps:
            raise StopIteration
        h = X_batch @ net.params["W1"] + net.params["b1"]
        mu, var = h.mean(axis=0), h.var(axis=0)
        p = net.bn_params[0]
        mean_gap[step] = np.mean(np.abs(mu - p["running_mean"]) / np.sqrt(var + 1e-5))
        var_gap[step] = np.mean(np.abs(np.log((var + 1e-5) / (p["running_var"] + 1e-5))))
        if step % eval_every == 0:
            eval_steps.append(step)
            acc_test.append(float(np.mean(net.predict(X_val) == y_val)))
            acc_batch.append(batch_mode_accuracy(net, X_val, y_val, len(X_val)))

    try:
        train_steps(net, data, num_epochs=10 ** 6, batch_size=batch_size, lr=lr, seed=seed + 1, on_step=on_step)
    except StopIteration:
        pass
    return {"step": np.arange(num_steps), "mean_gap": mean_gap, "var_gap": var_gap,
            "eval_step": np.array(eval_steps), "acc_test_mode": np.array(acc_test),
            "acc_batch_stats": np.array(acc_batch),
            "acc_one_sample": batch_mode_accuracy(net, X_val, y_val, 1)}


def running_average_gap_seeds(batchnorm: Pair, seeds: Sequence[int] = (0, 1, 2), processes: int | None = None,
                              **kw: Any) -> list[dict[str, np.ndarray]]:
    """:func:`running_average_gap` once per seed (the data split, the weights and the batches), in worker
    processes where the platform forks.

    Returns
    -------
    one :func:`running_average_gap` result per seed, in the order of ``seeds``.
    """
    return run_all([lambda s=s: running_average_gap(batchnorm, seed=s, **kw) for s in seeds], processes)
