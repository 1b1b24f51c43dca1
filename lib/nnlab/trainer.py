"""Minibatch training loop for any model with the network's API.

The model API the :class:`Trainer` relies on (what :class:`nnlab.network.FullyConnectedNet`
provides):

- ``model.params`` : dict name -> array, the parameters; the trainer stores each
  updated array back into this dict.
- ``model.loss(X, y) -> (loss, grads)`` : training-mode loss on a minibatch and a dict
  of gradients keyed like ``params``.
- ``model.loss(X) -> scores`` (N, C) : test-mode class scores.
- ``model.predict(X) -> labels`` (N,) (optional; argmax of the scores otherwise).
- ``model.loss_fn(scores, y) -> (loss, dscores)`` (optional; softmax cross-entropy otherwise)
  gives the per-epoch train and validation losses.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .layers import softmax_cross_entropy
from .optim import iterate_minibatches, sgd

__all__ = ["Trainer", "accuracy", "evaluate"]


def _scores(model: Any, X: np.ndarray) -> np.ndarray:
    return model.loss(X)


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict"):
        return np.asarray(model.predict(X))
    return np.argmax(_scores(model, X), axis=1)


def accuracy(model: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Fraction of samples whose predicted class is the label (test mode, in batches).

    Parameters
    ----------
    model : has ``predict(X) -> (N,) labels`` or ``loss(X) -> (N, C) scores``.
    X : (N, D) inputs.
    y : (N,) int labels.
    batch_size : samples per forward pass (bounds memory).

    Returns
    -------
    acc : float in [0, 1] (nan for N == 0).
    """
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    correct = 0
    for s in range(0, len(y), batch_size):
        correct += int(np.sum(_predict(model, X[s:s + batch_size]) == y[s:s + batch_size]))
    return correct / len(y)


def evaluate(model: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
    """Mean data loss (no penalty) and accuracy of ``model`` on ``(X, y)`` in test mode.

    Parameters
    ----------
    model : has ``loss(X) -> (N, C) scores`` and optionally ``loss_fn(scores, y)``.
    X : (N, D) inputs.
    y : (N,) int labels.
    batch_size : samples per forward pass.

    Returns
    -------
    loss : float, the loss averaged over samples.
    acc : float in [0, 1].
    """
    y = np.asarray(y)
    N = len(y)
    if N == 0:
        return float("nan"), float("nan")
    loss_fn = getattr(model, "loss_fn", softmax_cross_entropy)
    total_loss = 0.0
    correct = 0
    for s in range(0, N, batch_size):
        yb = y[s:s + batch_size]
        scores = _scores(model, X[s:s + batch_size])
        total_loss += float(loss_fn(scores, yb)[0]) * len(yb)
        correct += int(np.sum(np.argmax(scores, axis=1) == yb))
    return total_loss / N, correct / N


class Trainer:
    """Train a classifier with minibatch gradient descent and any update rule.

    Each epoch visits every training sample once, in a random order drawn from ``rng``
    (:func:`nnlab.optim.iterate_minibatches`); after each epoch the mean data loss and the
    accuracy on the training and validation sets are recorded (test mode, no penalty).

    Parameters
    ----------
    model : object with the model API described in this module's docstring.
    data : dict with ``X_train`` (N, D), ``y_train`` (N,), ``X_val`` (N_val, D), ``y_val`` (N_val,).
    update_rule : ``rule(w, dw, config) -> (next_w, config)``, e.g. :func:`nnlab.optim.adam`.
    optim_config : hyperparameters for the rule (e.g. ``{"learning_rate": 1e-3}``); every
        parameter gets its own (deep) copy, which then also holds its optimizer state.
    lr_decay : a float multiplies every learning rate by it after each epoch; a function
        ``schedule(lr0, epoch) -> lr`` sets the learning rate at the start of each epoch
        (epochs from 0; ``lr0`` is ``optim_config["learning_rate"]``, which a schedule needs:
        the rules' defaults differ).
    batch_size : samples per minibatch.
    num_epochs : maximum number of epochs.
    rng : numpy random Generator for the order of the samples.
    minibatches : ``minibatches(X, y, batch_size, rng) -> iterable of (X_batch, y_batch)`` for one
        epoch (default :func:`nnlab.optim.iterate_minibatches`; a notebook plugs in the student's).
    early_stopping : None or an object with ``step(val_loss, params) -> bool`` and
        ``best_params`` (e.g. :class:`nnlab.regularization.EarlyStopping`), called after every
        epoch. When it says stop, or at the end of training, its ``best_params`` are copied
        into ``model.params`` in place.
    progress : show a tqdm progress bar over epochs (loss and validation accuracy).
    print_every : print the minibatch loss every this many iterations (None: never).
    on_epoch_end : None or ``fn(trainer, epoch)`` called after each epoch's evaluation (epochs
        from 0), e.g. to record weight norms or snapshots; ``trainer.history`` is up to date.
    blas_threads : BLAS threads while training (None: leave BLAS as it is). The course's nets are
        small (a few hundred units): one thread is faster than several, and much faster on a busy
        machine, where a multi-threaded BLAS waits for its threads more than it multiplies.

    Attributes
    ----------
    history : dict filled by :meth:`train`.
    optim_configs : dict name -> config dict (optimizer state per parameter).
    """

    def __init__(self, model: Any, data: Mapping[str, np.ndarray], *,
                 update_rule: Callable[..., tuple[np.ndarray, dict]] = sgd,
                 optim_config: Mapping[str, Any] | None = None,
                 lr_decay: float | Callable[[float, int], float] = 1.0,
                 batch_size: int = 100,
                 num_epochs: int = 10,
                 rng: np.random.Generator,
                 minibatches: Callable[..., Any] = iterate_minibatches,
                 early_stopping: Any = None,
                 progress: bool = True,
                 print_every: int | None = None,
                 on_epoch_end: Callable[["Trainer", int], None] | None = None,
                 blas_threads: int | None = 1) -> None:
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise KeyError(f"data is missing {missing}")
        if not callable(update_rule):
            raise TypeError(f"update_rule must be a function rule(w, dw, config), got {update_rule!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(num_epochs) != num_epochs or num_epochs < 0:
            raise ValueError(f"num_epochs must be a nonnegative integer, got {num_epochs!r}")
        if callable(lr_decay) and "learning_rate" not in (optim_config or {}):
            raise ValueError("a learning-rate schedule needs optim_config['learning_rate'] (its lr0)")
        if not callable(lr_decay) and not lr_decay > 0:
            raise ValueError(f"lr_decay must be a positive number or a schedule(lr0, epoch), got {lr_decay!r}")
        self.model = model
        self.X_train, self.y_train = data["X_train"], np.asarray(data["y_train"])
        self.X_val, self.y_val = data["X_val"], np.asarray(data["y_val"])
        self.update_rule = update_rule
        self.optim_config = dict(optim_config or {})
        self.lr_decay = lr_decay
        self.batch_size = int(batch_size)
        self.num_epochs = int(num_epochs)
        self.rng = rng
        self.minibatches = minibatches
        self.early_stopping = early_stopping
        self.progress = progress
        self.print_every = print_every
        self.on_epoch_end = on_epoch_end
        self.blas_threads = blas_threads
        self.optim_configs: dict[str, dict[str, Any]] = {}
        self.history: dict[str, Any] = {}

    def _restore_best(self) -> None:
        best = getattr(self.early_stopping, "best_params", None)
        if not best:
            return
        for k, v in best.items():
            cur = self.model.params.get(k)
            if cur is not None and cur.shape == np.shape(v):
                np.copyto(cur, v)
            else:
                self.model.params[k] = np.array(v, copy=True)

    def train(self) -> dict[str, Any]:
        """Run the training loop (fresh optimizer state, the model's current parameters).

        Returns
        -------
        history : dict with
            ``"loss"`` : list, minibatch loss of every iteration;
            ``"train_loss"``, ``"val_loss"``, ``"train_acc"``, ``"val_acc"`` : lists, one per epoch;
            ``"lr"`` : list, the learning rate used in each epoch (None if the rule has none);
            ``"epochs_run"`` : int; ``"stopped_early"`` : bool;
            ``"best_epoch"`` : the early stopper's best epoch (None without early stopping).
        """
        if self.blas_threads is None:
            return self._train()
        with threadpool_limits(self.blas_threads, user_api="blas"):
            return self._train()

    def _train(self) -> dict[str, Any]:
        model = self.model
        self.optim_configs = {k: copy.deepcopy(self.optim_config) for k in model.params}
        lr0 = self.optim_config.get("learning_rate")
        schedule = self.lr_decay if callable(self.lr_decay) else None
        history: dict[str, Any] = {"loss": [], "train_loss": [], "val_loss": [], "train_acc": [],
                                   "val_acc": [], "lr": [], "epochs_run": 0, "stopped_early": False,
                                   "best_epoch": None}
        self.history = history
        N = len(self.y_train)
        iters_per_epoch = max(1, -(-N // self.batch_size))
        total_iters = iters_per_epoch * self.num_epochs
        it = 0
        bar = tqdm(range(self.num_epochs), disable=not self.progress, desc="epochs", leave=True)
        for epoch in bar:
            if schedule is not None:
                lr = float(schedule(lr0, epoch))
                for cfg in self.optim_configs.values():
                    cfg["learning_rate"] = lr
            for X_batch, y_batch in self.minibatches(self.X_train, self.y_train, self.batch_size, self.rng):
                loss, grads = model.loss(X_batch, y_batch)
                for k, w in model.params.items():
                    model.params[k], self.optim_configs[k] = self.update_rule(w, grads[k], self.optim_configs[k])
                history["loss"].append(float(loss))
                it += 1
                if self.print_every and it % self.print_every == 0:
                    tqdm.write(f"(iteration {it} / {total_iters}) loss {float(loss):.4f}")
            first_cfg = next(iter(self.optim_configs.values()), {})
            history["lr"].append(first_cfg.get("learning_rate"))

            train_loss, train_acc = evaluate(model, self.X_train, self.y_train)
            val_loss, val_acc = evaluate(model, self.X_val, self.y_val)
            history["train_loss"].append(train_loss)
            history["train_acc"].append(train_acc)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
            history["epochs_run"] = epoch + 1
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}" if history["loss"] else "-",
                            val_acc=f"{val_acc:.3f}")
            if self.print_every:
                tqdm.write(f"(epoch {epoch + 1} / {self.num_epochs}) train acc {train_acc:.3f}; "
                           f"val acc {val_acc:.3f}; val loss {val_loss:.4f}")

            if self.on_epoch_end is not None:
                self.on_epoch_end(self, epoch)

            if schedule is None and self.lr_decay != 1.0:
                for cfg in self.optim_configs.values():
                    if "learning_rate" in cfg:
                        cfg["learning_rate"] *= self.lr_decay
            if self.early_stopping is not None and self.early_stopping.step(val_loss, model.params):
                history["stopped_early"] = True
                break
        bar.close()
        if self.early_stopping is not None:
            history["best_epoch"] = getattr(self.early_stopping, "best_epoch", None)
            self._restore_best()
        return history
