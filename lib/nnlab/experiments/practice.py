"""Experiments of notebook 08: the checks and habits around a training run.

Every experiment trains :class:`nnlab.network.FullyConnectedNet` with :class:`nnlab.trainer.Trainer` on the
8x8 digits (through :func:`nnlab.experiments.regularization.train_net`), with the student's functions plugged in
where the notebook asks for them. Everything is deterministic given the seeds. The comparisons are repeated
over seeds, draws or data splits (:data:`SEEDS`), in worker processes where the platform forks
(:func:`nnlab.experiments.seeds.run_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nnlab import optim
from nnlab.activations import softmax
from nnlab.experiments.regularization import digits_splits, train_net
from nnlab.experiments.seeds import run_all
from nnlab.init import random_init
from nnlab.network import FullyConnectedNet
from nnlab.practice import class_weighted_cross_entropy, grid_search, refine_space
from nnlab.trainer import Trainer, accuracy

__all__ = ["over_seeds", "initial_losses", "overfit_tiny", "random_labels", "learning_rates", "monitor_training",
           "monitor_over_seeds", "first_layer_weights", "search_comparison", "search_draws", "ensemble_vs_members",
           "imbalanced", "imbalanced_over_splits"]

#: The seeds (or data splits) each comparison is repeated over.
SEEDS: tuple[int, ...] = (0, 1, 2)


def over_seeds(experiment: Callable[..., Any], seeds: Sequence[int] = SEEDS, processes: int | None = None,
               **kw: Any) -> list[Any]:
    """``experiment(seed=s, **kw)`` for each seed, in worker processes where the platform forks (the same
    results as one after the other): the seed draws the split, the initial weights and the batch order."""
    return run_all([lambda s=s: experiment(seed=s, **kw) for s in seeds], processes)


# --------------------------------------------------------------------------- sanity checks

def initial_losses(class_counts: Sequence[int], scales: Mapping[str, float], n: int = 500, dim: int = 20,
                   hidden: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """The loss of untrained nets ``[dim, hidden, C]`` on random data, per number of classes C.

    ``scales`` maps a name to the standard deviation of the initial weights (N(0, scale^2)).

    Returns
    -------
    losses : dict name -> (len(class_counts),) mean softmax cross-entropy before any training.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    out = {}
    for name, scale in scales.items():
        values = []
        for C in class_counts:
            y = rng.integers(0, C, size=n)
            net = FullyConnectedNet([dim, hidden, C], init=lambda a, b, r, s=scale: random_init(a, b, r, scale=s),
                                    rng=np.random.default_rng(seed + C))
            values.append(net.loss(X, y)[0])
        out[name] = np.array(values)
    return out


class _ShuffledLabels:
    """A model whose minibatch labels are shuffled apart from their images: the bug of two permutations."""

    def __init__(self, net: FullyConnectedNet, rng: np.random.Generator) -> None:
        self.net, self.rng, self.params = net, rng, net.params

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        return self.net.loss(X) if y is None else self.net.loss(X, self.rng.permutation(y))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.net.predict(X)


def overfit_tiny(n: int = 20, num_epochs: int = 200, lr: float = 0.05, seed: int = 0) -> dict[str, dict]:
    """Train on ``n`` digits only, correctly and with a bug (labels shuffled apart from the images).

    Returns
    -------
    runs : ``{"correct": history, "labels shuffled apart from images": history}``; each history holds the
        per-epoch ``train_loss`` and ``train_acc`` on the ``n`` samples.
    """
    data = digits_splits(n_train=n, seed=seed)
    _, correct = train_net(data, num_epochs=num_epochs, lr=lr, batch_size=n, seed=seed)
    net = FullyConnectedNet([64, 100, 10], rng=np.random.default_rng(seed))
    buggy = Trainer(_ShuffledLabels(net, np.random.default_rng(seed + 5)), data, update_rule=optim.sgd_momentum,
                    optim_config={"learning_rate": lr}, batch_size=n, num_epochs=num_epochs,
                    rng=np.random.default_rng(seed + 1), progress=False).train()
    return {"correct": correct, "labels shuffled apart from images": buggy}


def random_labels(n: int = 200, num_epochs: int = 300, hidden: int = 200, lr: float = 0.05,
                  seed: int = 0) -> dict[str, dict]:
    """The same net trained on ``n`` digits with their true labels and with labels drawn at random.

    Returns
    -------
    runs : ``{"true labels": history, "random labels": history}``, each with per-epoch ``train_acc`` and
        ``val_acc`` (the dev set keeps its true labels) and the final ``test_acc``.
    """
    data = digits_splits(n_train=n, seed=seed)
    shuffled = dict(data)
    shuffled["y_train"] = np.random.default_rng(seed + 3).integers(0, 10, size=n)
    runs = {}
    for name, d in (("true labels", data), ("random labels", shuffled)):
        net, history = train_net(d, hidden=(hidden,), num_epochs=num_epochs, lr=lr, seed=seed)
        history["test_acc"] = accuracy(net, data["X_test"], data["y_test"])
        runs[name] = history
    return runs


# --------------------------------------------------------------------------- watching a run

def learning_rates(lrs: Mapping[str, float], num_epochs: int = 20, seed: int = 0) -> dict[str, dict]:
    """Plain SGD on all digits with each learning rate of ``lrs`` (name -> rate).

    Returns
    -------
    runs : dict name -> the trainer's history (``loss`` per minibatch, ``train_loss``/``val_acc`` per epoch);
        a diverging run's losses become inf or NaN, without warnings.
    """
    data = digits_splits(n_train=None, seed=seed)
    runs = {}
    with np.errstate(all="ignore"):
        for name, lr in lrs.items():
            _, runs[name] = train_net(data, num_epochs=num_epochs, lr=lr, seed=seed, update_rule=optim.sgd)
    return runs


def monitor_training(update_ratio: Callable[[np.ndarray, np.ndarray], float], lrs: Mapping[str, float],
                     num_epochs: int = 15, activation: str = "relu", hidden: int = 100,
                     seed: int = 0) -> dict[str, dict[str, Any]]:
    """Train with each learning rate and record, per minibatch, ``update_ratio(W1, W1_next)`` (the student's),
    and per epoch the fraction of dead hidden units (ReLU: zero on every dev image) and of saturated ones
    (tanh: ``|h| > 0.99`` on more than 99 % of the dev images).

    Returns
    -------
    runs : dict name -> {``"ratio"``: (iterations,), ``"dead"``: (num_epochs,), ``"saturated"``: (num_epochs,),
        ``"val_acc"``: final dev accuracy, ``"first_steps"``: the largest ratio of the first 10 iterations,
        ``"loss"``: the minibatch loss of every iteration}.
    """
    data = digits_splits(n_train=None, seed=seed)
    runs = {}
    for name, lr in lrs.items():
        ratios: list[float] = []
        dead: list[float] = []
        saturated: list[float] = []

        def rule(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
            before = w.copy()
            next_w, config = optim.sgd(w, dw, config)
            if w.shape == (64, hidden):  # W1, the only parameter of this shape
                ratios.append(update_ratio(before, next_w))
            return next_w, config

        def watch(trainer: Trainer, epoch: int) -> None:
            trainer.model.loss(data["X_val"])
            h = trainer.model.hidden_outputs[0]
            dead.append(float(np.mean(np.all(h <= 0, axis=0))))
            saturated.append(float(np.mean(np.mean(np.abs(h) > 0.99, axis=0) > 0.99)))

        with np.errstate(all="ignore"):
            net, history = train_net(data, num_epochs=num_epochs, lr=lr, seed=seed, update_rule=rule,
                                     hidden=(hidden,), activation=activation, on_epoch_end=watch)
        runs[name] = {"ratio": np.array(ratios), "dead": np.array(dead), "saturated": np.array(saturated),
                      "val_acc": history["val_acc"][-1], "first_steps": float(np.max(ratios[:10])),
                      "loss": np.array(history["loss"])}
    return runs


def monitor_over_seeds(update_ratio: Callable[[np.ndarray, np.ndarray], float], lrs: Mapping[str, float],
                       num_epochs: int = 15, activation: str = "relu", seeds: Sequence[int] = SEEDS,
                       processes: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """:func:`monitor_training` once per seed (the split, the initial weights and the batch order).

    Returns
    -------
    runs : dict name -> one run per seed, in the order of ``seeds``.
    """
    per_seed = run_all([lambda s=s: monitor_training(update_ratio, lrs, num_epochs=num_epochs,
                                                     activation=activation, seed=s) for s in seeds], processes)
    return {name: [runs[name] for runs in per_seed] for name in lrs}


def first_layer_weights(runs: Mapping[str, Mapping[str, Any]], hidden: int = 16, seed: int = 0
                        ) -> dict[str, dict[str, Any]]:
    """Train ``[64, hidden, 10]`` nets and return their first-layer weights, one 8x8 image per hidden unit.

    ``runs`` maps a name to keyword arguments: ``n_train`` (training images, None: all), ``lam`` (L2
    strength), ``init_scale`` (standard deviation of the initial weights; None: He), ``num_epochs``, ``lr``.

    Returns
    -------
    results : dict name -> {``"W1"``: (hidden, 8, 8) images, ``"val_acc"``, ``"train_acc"``,
        ``"border"``: mean ``|w|`` on the pixels that are blank (0) in every training image,
        ``"inner"``: mean ``|w|`` on the others, ``"empty_units"``: units whose weights are all below 1e-3}.
    """
    out = {}
    for name, kw in runs.items():
        data = digits_splits(n_train=kw.get("n_train"), seed=seed)
        scale = kw.get("init_scale")
        init = {} if scale is None else {"init": lambda a, b, r, s=scale: random_init(a, b, r, scale=s)}
        net, history = train_net(data, regularizer="l2" if kw.get("lam") else None, lam=kw.get("lam", 0.0),
                                 hidden=(hidden,), num_epochs=kw.get("num_epochs", 60), lr=kw.get("lr", 0.05),
                                 seed=seed, **init)
        W1 = net.params["W1"]
        blank = np.all(data["X_train"] == 0, axis=0)
        out[name] = {"W1": W1.T.reshape(hidden, 8, 8).copy(), "val_acc": history["val_acc"][-1],
                     "train_acc": history["train_acc"][-1], "blank_pixels": int(blank.sum()),
                     "border": float(np.abs(W1[blank]).mean()) if blank.any() else 0.0,
                     "inner": float(np.abs(W1[~blank]).mean()),
                     "empty_units": int(np.sum(np.abs(W1).max(axis=0) < 1e-3))}
    return out


# --------------------------------------------------------------------------- hyperparameter search

def short_training_score(config: Mapping[str, float], n_train: int = 500, num_epochs: int = 8,
                         seed: int = 0) -> float:
    """Dev accuracy of a ``[64, 50, 10]`` net after a short run with ``learning_rate`` and L2 ``lam``
    (plain SGD, batches of 50): the ``train_fn`` of the search experiments. Deterministic."""
    data = digits_splits(n_train=n_train, seed=seed)
    lam = float(config.get("lam", 0.0))
    with np.errstate(all="ignore"):
        _, history = train_net(data, regularizer="l2" if lam else None, lam=lam, hidden=(50,),
                               num_epochs=num_epochs, lr=float(config["learning_rate"]), seed=seed,
                               update_rule=optim.sgd)
    acc = history["val_acc"][-1]
    return float(acc) if np.isfinite(history["val_loss"][-1]) else 0.1


def search_comparison(random_search: Callable[..., list], space: Mapping[str, tuple[float, float, str]],
                      n_trials: int = 9, seed: int = 0,
                      train_fn: Callable[[dict], float] = short_training_score) -> dict[str, list]:
    """Grid vs random search with the same budget, then a finer random round around the best.

    ``space`` has exactly the ``learning_rate`` and ``lam`` dimensions; the grid puts
    ``sqrt(n_trials)`` values on each, log-spaced over the same ranges. ``random_search`` is the student's.

    Returns
    -------
    results : dict with ``"grid"``, ``"random"``, ``"fine"`` (lists of ``(config, score)``, best first) and
        ``"fine_space"`` (the space of the fine round).
    """
    k = int(round(np.sqrt(n_trials)))
    grid = {name: np.geomspace(low, high, k) if scale == "log" else np.linspace(low, high, k)
            for name, (low, high, scale) in space.items()}
    grid_results = grid_search(train_fn, grid)
    random_results = random_search(train_fn, dict(space), n_trials, np.random.default_rng(seed))
    fine_space = refine_space(random_results, space)
    fine = random_search(train_fn, fine_space, n_trials, np.random.default_rng(seed + 1))
    return {"grid": grid_results, "random": list(random_results), "fine": list(fine), "fine_space": fine_space}


def search_draws(random_search: Callable[..., list], space: Mapping[str, tuple[float, float, str]],
                 n_trials: int = 9, draws: Sequence[int] = (0, 1, 2, 3, 4),
                 train_fn: Callable[[dict], float] = short_training_score,
                 processes: int | None = None) -> dict[str, Any]:
    """The grid once (it is deterministic) and the random search with its fine round once per draw.

    Draw ``d`` seeds the random round with ``default_rng(2 d)`` and the fine round with ``default_rng(2 d + 1)``
    (draw 0 is :func:`search_comparison`'s).

    Returns
    -------
    results : ``{"grid": [(config, score), ...], "draws": [{"random": ..., "fine": ..., "fine_space": ...}, ...]}``.
    """
    k = int(round(np.sqrt(n_trials)))
    grid = {name: np.geomspace(low, high, k) if scale == "log" else np.linspace(low, high, k)
            for name, (low, high, scale) in space.items()}

    def draw(d: int) -> dict[str, Any]:
        first = list(random_search(train_fn, dict(space), n_trials, np.random.default_rng(2 * d)))
        fine_space = refine_space(first, space)
        fine = list(random_search(train_fn, fine_space, n_trials, np.random.default_rng(2 * d + 1)))
        return {"random": first, "fine": fine, "fine_space": fine_space}

    results = run_all([lambda: grid_search(train_fn, grid)] + [lambda d=d: draw(d) for d in draws], processes)
    return {"grid": results[0], "draws": results[1:]}


# --------------------------------------------------------------------------- ensembles and error analysis

def ensemble_vs_members(ensemble_predict: Callable[[list], np.ndarray], n_members: int = 5, n_train: int = 300,
                        num_epochs: int = 60, seeds: Sequence[int] = (0,),
                        processes: int | None = None) -> list[dict[str, Any]]:
    """Train ``n_members`` nets that differ only in their seed (initial weights, batch order), average their
    probabilities with the student's ``ensemble_predict``, and compare with the members, choosing on dev.

    Each entry of ``seeds`` gives one independent ensemble (members seeded ``100 * seed + i``). The members and
    the ensemble are compared on the dev set, where the best member is chosen; the test set is then evaluated
    for the two candidates only: the chosen member and the ensemble.

    Returns
    -------
    ensembles : one dict per seed: ``"members_dev"`` (n_members,) dev accuracies, ``"ensemble_dev"``,
        ``"chosen"`` (the index of the member with the best dev accuracy, the first on a tie), ``"chosen_test"``
        and ``"ensemble_test"`` (test accuracies), ``"gain_over_chosen"`` (test, ensemble minus chosen member)
        and ``"gain_over_mean"`` (dev, ensemble minus the members' mean): accuracy points, as fractions.
    """
    data = digits_splits(n_train=n_train)

    def member(seed: int) -> tuple[np.ndarray, np.ndarray]:
        net, _ = train_net(data, num_epochs=num_epochs, seed=seed)
        return softmax(net.loss(data["X_val"]), axis=1), softmax(net.loss(data["X_test"]), axis=1)

    probs = run_all([lambda m=100 * s + i: member(m) for s in seeds for i in range(n_members)], processes)

    def acc(p: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.asarray(p).argmax(axis=1) == y))

    out = []
    for j, _ in enumerate(seeds):
        dev, test = zip(*probs[j * n_members:(j + 1) * n_members])
        members_dev = np.array([acc(p, data["y_val"]) for p in dev])
        ensemble_dev = acc(ensemble_predict(list(dev)), data["y_val"])
        chosen = int(np.argmax(members_dev))
        chosen_test = acc(test[chosen], data["y_test"])
        ensemble_test = acc(ensemble_predict(list(test)), data["y_test"])
        out.append({"members_dev": members_dev, "ensemble_dev": ensemble_dev, "chosen": chosen,
                    "chosen_test": chosen_test, "ensemble_test": ensemble_test,
                    "gain_over_chosen": ensemble_test - chosen_test,
                    "gain_over_mean": ensemble_dev - float(members_dev.mean())})
    return out


def imbalanced_split(minority: Sequence[int] = (5, 6, 7, 8, 9), keep: float = 0.1, seed: int = 0
                     ) -> dict[str, np.ndarray]:
    """All digits, with only a fraction ``keep`` of the training images of the ``minority`` classes kept.

    The dev and test sets stay balanced (the classes as they will be met)."""
    data = digits_splits(n_train=None, seed=seed)
    rng = np.random.default_rng(seed + 11)
    y = data["y_train"]
    drop = np.isin(y, minority) & (rng.random(len(y)) > keep)
    out = dict(data)
    out["X_train"], out["y_train"] = data["X_train"][~drop], y[~drop]
    return out


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: ``cm[i, j]`` = samples of class i predicted as j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def imbalanced(data: Mapping[str, np.ndarray], num_epochs: int = 40, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Train on an imbalanced split with the plain loss and with classes weighted by inverse frequency.

    Returns
    -------
    runs : ``{"plain": ..., "reweighted": ...}``, each with ``"cm"`` (10, 10) test confusion matrix,
        ``"per_class"`` (10,) test accuracy per class, ``"test_acc"`` and ``"class_weights"`` (10,).
    """
    counts = np.bincount(data["y_train"], minlength=10)
    weights = {"plain": np.ones(10), "reweighted": counts.sum() / (10 * np.maximum(counts, 1))}
    runs = {}
    for name, w in weights.items():
        net, _ = train_net(data, num_epochs=num_epochs, seed=seed, loss=class_weighted_cross_entropy(w))
        pred = net.predict(data["X_test"])
        cm = confusion_matrix(data["y_test"], pred, 10)
        runs[name] = {"cm": cm, "per_class": np.diag(cm) / cm.sum(axis=1), "test_acc": float(np.trace(cm) / cm.sum()),
                      "class_weights": w, "train_counts": counts}
    return runs


def imbalanced_over_splits(minority: Sequence[int] = (5, 6, 7, 8, 9), keep: float = 0.05, num_epochs: int = 40,
                           seeds: Sequence[int] = SEEDS, processes: int | None = None) -> list[dict[str, dict]]:
    """:func:`imbalanced` on one imbalanced split per seed (which images are kept, the split, the initial weights).

    Returns
    -------
    runs : one ``{"plain": ..., "reweighted": ...}`` per seed, as :func:`imbalanced` returns.
    """
    return run_all([lambda s=s: imbalanced(imbalanced_split(minority, keep, seed=s), num_epochs=num_epochs, seed=s)
                    for s in seeds], processes)
