"""Experiments of notebook 04: dropout against overfitting, the noisy cost, dropout as an ensemble,
data augmentation by shifts, and why a horizontal flip is no augmentation for digits.

Every experiment trains :class:`nnlab.network.FullyConnectedNet` with :class:`nnlab.trainer.Trainer`
on the 8x8 digits, with the student's ``(dropout_forward, dropout_backward)`` plugged in as the
network's ``dropout`` and the student's ``random_shift`` making the augmented copies. Everything is
deterministic given the seeds; the runs over several seeds may go to forked worker processes
(:func:`nnlab.experiments.seeds.run_all`: one result per seed, the same numbers as in one process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nnlab import optim
from nnlab.experiments.regularization import digits_splits
from nnlab.experiments.seeds import run_all
from nnlab.network import FullyConnectedNet
from nnlab.trainer import Trainer, evaluate

__all__ = ["digits_splits", "SEEDS", "train_dropout_net", "dropout_curves", "dropout_seeds", "full_batch_costs",
           "count_increases", "mc_dropout_predictions", "ensemble_vs_scaling", "ensembles_vs_scaling", "test_accuracy",
           "augment_with_shifts", "augmentation_runs", "flip_images", "flip_predictions"]

Pair = tuple[Callable[..., Any], Callable[..., Any]]
SIDE = 8  # the digits are 8 x 8 images, stored as rows of 64 pixels
#: The training seeds of the multi-seed experiments: 10 apart, because a seed s draws from s, s + 1 and s + 2.
SEEDS = (0, 10, 20, 30)


def train_dropout_net(data: Mapping[str, np.ndarray], dropout: Pair | None = None, keep_prob: float = 1.0, *,
                      hidden: Sequence[int] = (256, 256), num_epochs: int = 100, lr: float = 0.05,
                      batch_size: int = 50, update_rule: Callable = optim.sgd_momentum,
                      seed: int = 0) -> tuple[FullyConnectedNet, dict[str, Any]]:
    """Train a ReLU net ``[64, *hidden, 10]`` with dropout ``keep_prob`` after every hidden layer.

    ``dropout`` is the ``(forward, backward)`` pair (None: the library's). The initial weights come
    from ``seed`` (the same for every ``keep_prob``), the minibatch order from ``seed + 1`` and the
    dropout masks from ``seed + 2``.

    Returns
    -------
    net : the trained network.
    history : the trainer's history (per-iteration ``loss``; per-epoch ``train_loss``, ``val_loss``,
        ``train_acc``, ``val_acc``).
    """
    D = data["X_train"].shape[1]
    net = FullyConnectedNet([D, *hidden, 10], keep_prob=keep_prob, rng=np.random.default_rng(seed))
    if dropout is not None:
        net.dropout = dropout
    net.rng = np.random.default_rng(seed + 2)  # the masks: not tied to the initial weights
    trainer = Trainer(net, data, update_rule=update_rule, optim_config={"learning_rate": lr},
                      batch_size=batch_size, num_epochs=num_epochs, rng=np.random.default_rng(seed + 1),
                      progress=False)
    with threadpool_limits(1, user_api="blas"):  # small matrices: a second BLAS thread only adds overhead
        history = trainer.train()
    return net, history


def dropout_curves(dropout: Pair, data: Mapping[str, np.ndarray], keep_probs: Sequence[float] = (1.0, 0.5),
                   **train_kw: Any) -> dict[float, dict[str, Any]]:
    """The same net (same initial weights, same minibatches) trained once per ``keep_prob``.

    Returns
    -------
    runs : dict keep_prob -> {``"history"``, ``"test_acc"`` (final weights on the test set), ``"net"``}.
    """
    runs = {}
    for keep_prob in keep_probs:
        net, history = train_dropout_net(data, dropout, keep_prob, **train_kw)
        runs[keep_prob] = {"history": history, "net": net, "test_acc": evaluate(net, data["X_test"], data["y_test"])[1]}
    return runs


def _train_seed(data: Mapping[str, np.ndarray], dropout: Pair | None, keep_probs: Sequence[float], seed: int,
                train_kw: Mapping[str, Any]) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    # a worker returns the weights, not the net: the net holds the student's functions, which stay in the parent
    out = []
    for keep_prob in keep_probs:
        net, history = train_dropout_net(data, dropout, keep_prob, seed=seed, **train_kw)
        out.append((net.params, history))
    return out


def dropout_seeds(dropout: Pair | None, data: Mapping[str, np.ndarray], keep_probs: Sequence[float] = (1.0, 0.5),
                  seeds: Sequence[int] = SEEDS, workers: int = 2, **train_kw: Any) -> dict[float, dict[str, Any]]:
    """:func:`dropout_curves` for each training seed (initial weights, minibatches and masks), on one data split.

    Nothing is evaluated on the test set. ``workers`` processes share the seeds (1: all in this one).

    Returns
    -------
    runs : dict keep_prob -> {``"nets"``, ``"histories"`` (lists, one per seed), and arrays with one value per
        seed: ``"train_acc"``, ``"val_acc"``, ``"val_loss"`` (after the last epoch), ``"best_val_loss"`` and
        ``"best_epoch"`` (the lowest dev loss and its epoch, from 0)}.
    """
    keep_probs = tuple(keep_probs)
    results = run_all([partial(_train_seed, data, dropout, keep_probs, seed, train_kw) for seed in seeds],
                      processes=workers)
    D = data["X_train"].shape[1]
    runs: dict[float, dict[str, Any]] = {}
    for i, keep_prob in enumerate(keep_probs):
        nets, histories = [], []
        for seed, per_keep in zip(seeds, results):
            params, history = per_keep[i]
            net = FullyConnectedNet([D, *train_kw.get("hidden", (256, 256)), 10], keep_prob=keep_prob,
                                    rng=np.random.default_rng(seed))
            net.params = params
            if dropout is not None:
                net.dropout = dropout
            nets.append(net)
            histories.append(history)
        runs[keep_prob] = {
            "nets": nets, "histories": histories,
            "train_acc": np.array([h["train_acc"][-1] for h in histories]),
            "val_acc": np.array([h["val_acc"][-1] for h in histories]),
            "val_loss": np.array([h["val_loss"][-1] for h in histories]),
            "best_val_loss": np.array([min(h["val_loss"]) for h in histories]),
            "best_epoch": np.array([int(np.argmin(h["val_loss"])) for h in histories])}
    return runs


def full_batch_costs(dropout: Pair, data: Mapping[str, np.ndarray], keep_probs: Sequence[float] = (1.0, 0.5),
                     num_iterations: int = 150, lr: float = 0.1, **train_kw: Any) -> dict[float, np.ndarray]:
    """The training cost J of every iteration of full-batch gradient descent (plain SGD on all samples).

    With dropout, J is the cost of the thinned network that this iteration's masks drew.

    Returns
    -------
    costs : dict keep_prob -> (num_iterations,) array.
    """
    n = len(data["y_train"])
    out = {}
    for keep_prob in keep_probs:
        _, history = train_dropout_net(data, dropout, keep_prob, num_epochs=num_iterations, lr=lr, batch_size=n,
                                       update_rule=optim.sgd, **train_kw)
        out[keep_prob] = np.asarray(history["loss"])
    return out


def count_increases(costs: np.ndarray) -> int:
    """How many iterations raised the cost above the previous iteration's."""
    return int(np.sum(np.diff(np.asarray(costs)) > 0))


def _probs(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mc_dropout_predictions(net: FullyConnectedNet, X: np.ndarray, num_masks: int,
                           seed: int = 0) -> np.ndarray:
    """Class probabilities averaged over ``num_masks`` forward passes with dropout on (train mode).

    Returns
    -------
    probs : (num_masks, N, C), the running mean after 1, 2, ..., num_masks masks.
    """
    saved = net.rng
    net.rng = np.random.default_rng(seed)
    try:
        with threadpool_limits(1, user_api="blas"):
            total = np.zeros((len(X), net.layer_sizes[-1]))
            means = []
            for k in range(1, num_masks + 1):
                total += _probs(net.loss(X, mode="train"))
                means.append(total / k)
    finally:
        net.rng = saved
    return np.stack(means)


def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))))


def ensemble_vs_scaling(net: FullyConnectedNet, X: np.ndarray, y: np.ndarray, num_masks: int = 200,
                        seed: int = 0) -> dict[str, Any]:
    """Test-time weight scaling (one deterministic pass) against averaging the predictions of many masks.

    Returns
    -------
    result : dict with ``"scaled_acc"``, ``"scaled_loss"`` (the one deterministic test-mode pass),
        ``"single_acc"`` (mean accuracy of one random mask), ``"mc_acc"`` and ``"mc_loss"`` ((num_masks,):
        accuracy and log loss of the average over the first k masks), ``"mc_gap"`` ((num_masks,): mean
        absolute difference between the averaged and the scaled class probabilities) and ``"agreement"``
        (fraction of samples where the average of all masks predicts the same class as weight scaling).
    """
    with threadpool_limits(1, user_api="blas"):
        scaled = _probs(net.loss(X, mode="test"))
    mc = mc_dropout_predictions(net, X, num_masks, seed=seed)
    per_mask_acc = []
    # The accuracy of a single random mask: first differences of the running sums are the single passes.
    sums = mc * np.arange(1, num_masks + 1)[:, None, None]
    passes = np.diff(sums, axis=0, prepend=0)
    for p in passes:
        per_mask_acc.append(float(np.mean(p.argmax(axis=1) == y)))
    return {"scaled_acc": float(np.mean(scaled.argmax(axis=1) == y)), "scaled_loss": _nll(scaled, y),
            "single_acc": float(np.mean(per_mask_acc)),
            "mc_acc": np.array([np.mean(m.argmax(axis=1) == y) for m in mc]),
            "mc_loss": np.array([_nll(m, y) for m in mc]),
            "mc_gap": np.array([np.mean(np.abs(m - scaled)) for m in mc]),
            "agreement": float(np.mean(mc[-1].argmax(axis=1) == scaled.argmax(axis=1)))}


def ensembles_vs_scaling(nets: Sequence[FullyConnectedNet], X: np.ndarray, y: np.ndarray, num_masks: int = 200,
                         seed: int = 0, workers: int = 2) -> dict[str, np.ndarray]:
    """:func:`ensemble_vs_scaling` for each net (one per training seed), stacked: every key holds one row per net.

    ``workers`` processes share the nets (1: all in this one).
    """
    results = run_all([partial(ensemble_vs_scaling, net, X, y, num_masks, seed) for net in nets], processes=workers)
    return {key: np.array([r[key] for r in results]) for key in results[0]}


def test_accuracy(nets: Sequence[FullyConnectedNet], X: np.ndarray, y: np.ndarray, num_masks: int = 0,
                  seed: int = 0) -> np.ndarray:
    """The accuracy of each net: in test mode (weight scaling) when ``num_masks`` is 0, else of the class
    probabilities averaged over ``num_masks`` masks. For the one evaluation on the test set of what was chosen.
    """
    if num_masks:
        return np.array([np.mean(mc_dropout_predictions(net, X, num_masks, seed=seed)[-1].argmax(axis=1) == y)
                         for net in nets])
    return np.array([evaluate(net, X, y)[1] for net in nets])


def augment_with_shifts(random_shift: Callable, X: np.ndarray, y: np.ndarray, copies: int, max_shift: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The samples (N, 64) and ``copies`` shifted copies of each (labels repeated): (N * (copies + 1), 64)."""
    images = X.reshape(-1, SIDE, SIDE)
    shifted = [random_shift(images, max_shift, rng).reshape(len(X), -1) for _ in range(copies)]
    return np.concatenate([X, *shifted]), np.concatenate([y] * (copies + 1))


def flip_images(X: np.ndarray) -> np.ndarray:
    """Every image (rows of 64 pixels) mirrored left to right."""
    return X.reshape(-1, SIDE, SIDE)[:, :, ::-1].reshape(len(X), -1)


def _augmentation_seed(random_shift: Callable, n_train: int, seed: int, copies: int, max_shift: int,
                       num_iterations: int, batch_size: int, hidden: tuple[int, ...],
                       train_kw: Mapping[str, Any]) -> dict[str, tuple]:
    # one split: name -> (training set size, history, dev, shifted dev and test accuracy)
    data = digits_splits(n_train=n_train, seed=seed)
    X, y = data["X_train"], data["y_train"]
    rng = np.random.default_rng(seed + 10)
    sets = {"original": (X, y),
            "+ shifted copies": augment_with_shifts(random_shift, X, y, copies, max_shift, rng),
            "+ mirrored copies": (np.concatenate([X, flip_images(X)]), np.concatenate([y, y]))}
    X_val_shifted = random_shift(data["X_val"].reshape(-1, SIDE, SIDE), max_shift,
                                 np.random.default_rng(seed + 11)).reshape(len(data["X_val"]), -1)
    out = {}
    for name, (Xa, ya) in sets.items():
        d = {**data, "X_train": Xa, "y_train": ya}
        num_epochs = max(1, round(num_iterations / -(-len(ya) // batch_size)))
        net, history = train_dropout_net(d, None, 1.0, num_epochs=num_epochs, batch_size=batch_size, seed=seed,
                                         hidden=hidden, **train_kw)
        out[name] = (len(ya), history, history["val_acc"][-1], evaluate(net, X_val_shifted, data["y_val"])[1],
                     evaluate(net, data["X_test"], data["y_test"])[1])
    return out


def augmentation_runs(random_shift: Callable, *, n_train: int = 100, seeds: Sequence[int] = (0, 1, 2),
                      copies: int = 4, max_shift: int = 1, num_iterations: int = 1000, batch_size: int = 50,
                      hidden: Sequence[int] = (256,), workers: int = 2, **train_kw: Any) -> dict[str, dict[str, Any]]:
    """A small training set as it is, with shifted copies, and with mirrored copies, on several splits.

    For each seed, the digits are split anew (:func:`digits_splits` with that seed, the first
    ``n_train`` training images kept) and the same net is trained on the three training sets for about
    ``num_iterations`` SGD steps each (a larger set is seen for fewer epochs). The shifted copies come
    from ``random_shift`` with ``max_shift``; the dev set is also evaluated with every image moved by
    ``random_shift`` (a dev set whose digits are not all centred). ``workers`` processes share the splits
    (1: all in this one).

    Returns
    -------
    runs : dict name -> {``"n_train"``, ``"val_acc"``, ``"shifted_val_acc"``, ``"test_acc"`` (arrays, one
        value per seed), ``"history"`` (the first seed's)}, for the names ``"original"``,
        ``"+ shifted copies"`` and ``"+ mirrored copies"``.
    """
    jobs = [partial(_augmentation_seed, random_shift, n_train, seed, copies, max_shift, num_iterations, batch_size,
                    tuple(hidden), train_kw) for seed in seeds]
    runs: dict[str, dict[str, Any]] = {}
    for per_seed in run_all(jobs, processes=workers):
        for name, (n, history, val_acc, shifted_val_acc, test_acc) in per_seed.items():
            run = runs.setdefault(name, {"n_train": n, "val_acc": [], "shifted_val_acc": [], "test_acc": [],
                                         "history": history})
            run["val_acc"].append(val_acc)
            run["shifted_val_acc"].append(shifted_val_acc)
            run["test_acc"].append(test_acc)
    for run in runs.values():
        for key in ("val_acc", "shifted_val_acc", "test_acc"):
            run[key] = np.asarray(run[key])
    return runs


def flip_predictions(data: Mapping[str, np.ndarray], **train_kw: Any) -> dict[str, Any]:
    """What a net trained on all the (unflipped) training digits reads in the mirrored dev images.

    Returns
    -------
    result : dict with ``"same"`` (10,): per class, the fraction of mirrored images still read as their
        label; ``"read_as"`` (10, 10): row c, the fractions of mirrored images of class c read as each
        class; ``"val_acc"``: accuracy on the unmirrored dev images.
    """
    net, history = train_dropout_net(data, None, 1.0, **train_kw)
    y = data["y_val"]
    pred = net.predict(flip_images(data["X_val"]))
    read_as = np.zeros((10, 10))
    np.add.at(read_as, (y, pred), 1)
    read_as /= read_as.sum(axis=1, keepdims=True)
    return {"same": np.diag(read_as).copy(), "read_as": read_as, "val_acc": history["val_acc"][-1]}

