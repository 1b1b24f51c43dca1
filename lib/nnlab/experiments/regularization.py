"""Experiments of notebook 03: overfitting and L2, L1 vs L2 weights, bias vs variance, early stopping.

Every experiment trains :class:`nnlab.network.FullyConnectedNet` with :class:`nnlab.trainer.Trainer`
(SGD with momentum) on the 8x8 digits, with the student's penalty plugged in as the network's
``regularizer=(penalty, penalty_grads)`` and the student's ``EarlyStopping`` as the trainer's
``early_stopping``. Everything is deterministic given the seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nnlab import data as _data
from nnlab import optim
from nnlab.network import FullyConnectedNet
from nnlab.trainer import Trainer, evaluate

Regularizer = tuple[Callable[..., float], Callable[..., dict]]


def digits_splits(n_train: int | None = 200, label_noise: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The digits split 60 / 20 / 20 into train / dev / test, stratified by class.

    Only the first ``n_train`` training samples are kept (None: all 1079). A fraction
    ``label_noise`` of them get their label replaced by a class drawn uniformly at random
    (which is the right class again one time in ten). The dev and test labels stay clean.

    Returns
    -------
    data : dict with ``X_train`` (n_train, 64), ``y_train`` (n_train,) (possibly noisy), ``X_val``,
        ``y_val`` (359 dev samples), ``X_test``, ``y_test`` (359 test samples), ``y_train_clean``
        (n_train,) and ``wrong`` (n_train,) bool, True where the training label is wrong.
    """
    d = _data.load_digits(np.random.default_rng(seed))
    n = len(d["y_train"]) if n_train is None else int(n_train)
    out = {k: v for k, v in d.items()}
    out["X_train"], out["y_train"] = d["X_train"][:n], d["y_train"][:n].copy()
    out["y_train_clean"] = d["y_train"][:n].copy()
    rng = np.random.default_rng(seed + 1000)
    flip = rng.random(n) < label_noise
    out["y_train"][flip] = rng.integers(0, 10, size=int(flip.sum()))
    out["wrong"] = out["y_train"] != out["y_train_clean"]
    return out


def train_net(data: Mapping[str, np.ndarray], *, regularizer: Regularizer | None = None, lam: float = 0.0,
              hidden: Sequence[int] = (100,), num_epochs: int = 100, lr: float = 0.05, batch_size: int = 50,
              seed: int = 0, early_stopping: Any = None,
              on_epoch_end: Callable[[Trainer, int], None] | None = None,
              update_rule: Callable[..., Any] = optim.sgd_momentum,
              **net_kw: Any) -> tuple[FullyConnectedNet, dict]:
    """Train a ReLU net ``[D, *hidden, C]`` with SGD + momentum; the penalty ``regularizer`` has strength ``lam``.

    ``update_rule`` replaces SGD + momentum (its ``learning_rate`` is ``lr``); ``net_kw`` go to
    :class:`~nnlab.network.FullyConnectedNet` (``activation``, ``init``, ``loss``, ...). ``C`` is the
    number of classes in ``data["y_train"]`` (at least 10, the digits).

    Returns
    -------
    net : the trained network (with early stopping: the restored best weights).
    history : the trainer's history (per-epoch ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``, ...).
    """
    D = data["X_train"].shape[1]
    C = max(10, int(np.max(data["y_train"])) + 1)
    net = FullyConnectedNet([D, *hidden, C], regularizer=regularizer if lam else None, reg=lam,
                            rng=np.random.default_rng(seed), **net_kw)
    trainer = Trainer(net, data, update_rule=update_rule, optim_config={"learning_rate": lr},
                      batch_size=batch_size, num_epochs=num_epochs, rng=np.random.default_rng(seed + 1),
                      progress=False, early_stopping=early_stopping, on_epoch_end=on_epoch_end)
    history = trainer.train()  # with one BLAS thread, the trainer's default
    return net, history


def lambda_curves(penalty: Callable, penalty_grads: Callable, data: Mapping[str, np.ndarray],
                  lams: Sequence[float], **train_kw: Any) -> dict[float, dict[str, Any]]:
    """Train the same net (same initial weights, same minibatches) once per strength ``lam``.

    Returns
    -------
    runs : dict lam -> {``"history"``: the trainer's history, ``"test_acc"``: accuracy of the final
        weights on the test set, ``"memorized"``: the fraction of the wrong training labels (``data["wrong"]``)
        that the final net predicts, i.e. has learned by heart (nan without wrong labels)}.
    """
    runs = {}
    wrong = np.asarray(data.get("wrong", np.zeros(len(data["y_train"]), dtype=bool)))
    for lam in lams:
        net, history = train_net(data, regularizer=(penalty, penalty_grads), lam=lam, **train_kw)
        pred = net.predict(data["X_train"][wrong]) if wrong.any() else np.array([])
        runs[lam] = {"history": history, "test_acc": evaluate(net, data["X_test"], data["y_test"])[1],
                     "memorized": float(np.mean(pred == data["y_train"][wrong])) if wrong.any() else float("nan")}
    return runs


def weight_trajectories(regularizers: Mapping[str, tuple[Callable, Callable, float] | None],
                        data: Mapping[str, np.ndarray], num_tracked: int = 50, near_zero: float = 1e-3,
                        seed: int = 0, **train_kw: Any) -> dict[str, dict[str, Any]]:
    """Follow ``num_tracked`` first-layer weights through training, once per regularizer.

    ``regularizers`` maps a name to ``(penalty, penalty_grads, lam)`` or None (no penalty). The
    same weights (the same random entries of ``W1``) are tracked in every run.

    Returns
    -------
    runs : dict name -> {``"trajectories"``: (num_epochs + 1, num_tracked), the tracked weights at the
        start and after every epoch; ``"W1"``: (64, H) final first-layer weights; ``"val_acc"``: final dev
        accuracy; ``"exact_zero"``, ``"near_zero"``: fractions of ``W1`` that are exactly 0 and that
        have ``|w| < near_zero``; ``"mean_abs"``: mean ``|w|`` of ``W1``}.
    """
    runs = {}
    for name, reg in regularizers.items():
        regularizer, lam = (None, 0.0) if reg is None else ((reg[0], reg[1]), reg[2])
        D, H = data["X_train"].shape[1], (train_kw.get("hidden") or (100,))[0]
        idx = np.random.default_rng(seed + 7).choice(D * H, size=num_tracked, replace=False)
        snaps: list[np.ndarray] = []

        def record(trainer: Trainer, epoch: int) -> None:
            snaps.append(trainer.model.params["W1"].ravel()[idx].copy())

        # The initial weights: the network draws them from its seed, before any training.
        init = FullyConnectedNet([D, H, 10], rng=np.random.default_rng(seed)).params["W1"].ravel()[idx]
        net, history = train_net(data, regularizer=regularizer, lam=lam, seed=seed, on_epoch_end=record, **train_kw)
        W1 = net.params["W1"]
        runs[name] = {"trajectories": np.vstack([init, *snaps]), "W1": W1.copy(), "val_acc": history["val_acc"][-1],
                      "exact_zero": float(np.mean(W1 == 0)), "near_zero": float(np.mean(np.abs(W1) < near_zero)),
                      "mean_abs": float(np.mean(np.abs(W1)))}
    return runs


def diagnose_fit(train_err: float, dev_err: float, target_err: float = 0.0, tol: float = 0.05) -> str:
    """Bias vs variance from errors: bias = train - target, variance = dev - train, each high above ``tol``.

    Returns one of ``"good fit"``, ``"high bias"``, ``"high variance"``, ``"high bias and high variance"``.
    """
    high_bias = train_err - target_err > tol
    high_var = dev_err - train_err > tol
    return {(False, False): "good fit", (True, False): "high bias", (False, True): "high variance",
            (True, True): "high bias and high variance"}[(high_bias, high_var)]


#: The configurations of the bias/variance experiment: name -> (training samples, hidden widths, lambda).
FIT_CONFIGS: dict[str, tuple[int | None, tuple[int, ...], float]] = {
    "3 hidden units": (None, (3,), 0.0),
    "100 units, λ = 10": (None, (100,), 10.0),
    "100 units, 100 samples": (100, (100,), 0.0),
    "100 units, 100 samples, λ = 3": (100, (100,), 3.0),
    "100 units, 1079 samples": (None, (100,), 0.0),
}


def bias_variance(penalty: Callable, penalty_grads: Callable,
                  configs: Mapping[str, tuple[int | None, tuple[int, ...], float]] = FIT_CONFIGS,
                  num_iterations: int = 400, batch_size: int = 50, target_err: float = 0.0, tol: float = 0.05,
                  seed: int = 0, **train_kw: Any) -> dict[str, dict[str, Any]]:
    """Train error, dev error and the diagnosis of each configuration (clean digits labels).

    Every configuration gets about the same number of SGD steps (``num_iterations``), so a small
    training set is seen for more epochs rather than trained less.

    Returns
    -------
    results : dict name -> {``"train_err"``, ``"dev_err"``, ``"diagnosis"``, ``"n_train"``, ``"num_epochs"``}
        (errors are 1 - accuracy on the training samples used and on the dev set).
    """
    results = {}
    for name, (n_train, hidden, lam) in configs.items():
        d = digits_splits(n_train=n_train, seed=seed)
        n = len(d["y_train"])
        num_epochs = max(1, round(num_iterations / -(-n // batch_size)))
        _, history = train_net(d, regularizer=(penalty, penalty_grads), lam=lam, hidden=hidden, seed=seed,
                               num_epochs=num_epochs, batch_size=batch_size, **train_kw)
        train_err, dev_err = 1 - history["train_acc"][-1], 1 - history["val_acc"][-1]
        results[name] = {"train_err": train_err, "dev_err": dev_err, "n_train": n, "num_epochs": num_epochs,
                         "diagnosis": diagnose_fit(train_err, dev_err, target_err, tol)}
    return results


def early_stopping_run(EarlyStopping: Callable[..., Any], data: Mapping[str, np.ndarray], patience: int = 10,
                       min_delta: float = 0.0, num_epochs: int = 200, **train_kw: Any) -> dict[str, Any]:
    """The same training run twice: once stopped by ``EarlyStopping(patience, min_delta)``, once to the end.

    Both runs share the initial weights and the order of the minibatches, so the stopped run's
    curves are the beginning of the full run's.

    Returns
    -------
    result : dict with ``"history"`` (the stopped run's), ``"best_epoch"`` and ``"stop_epoch"`` (epochs
        from 0), ``"restored_val_loss"`` (dev loss of the weights the trainer restored),
        ``"restored_test_acc"``, ``"full_history"`` and ``"full_test_acc"`` (the run without early stopping).
    """
    stopper = EarlyStopping(patience, min_delta=min_delta)
    net, history = train_net(data, early_stopping=stopper, num_epochs=num_epochs, **train_kw)
    restored_val_loss = evaluate(net, data["X_val"], data["y_val"])[0]
    full_net, full_history = train_net(data, num_epochs=num_epochs, **train_kw)
    return {"history": history, "best_epoch": stopper.best_epoch, "stop_epoch": history["epochs_run"] - 1,
            "restored_val_loss": restored_val_loss,
            "restored_test_acc": evaluate(net, data["X_test"], data["y_test"])[1],
            "full_history": full_history, "full_test_acc": evaluate(full_net, data["X_test"], data["y_test"])[1]}
