"""Weight penalties and early stopping (references for notebook 03).

Penalties take the network's parameter dict and regularize the weights only: the
arrays whose name starts with ``"W"`` (``"W1"``, ``"W2"``, ...). Biases and
normalization parameters (``"b*"``, ``"gamma*"``, ``"beta*"``) are not penalized and
get zero gradients. ``m`` is the number of samples the data loss is averaged over
(the batch size), so that penalty and data loss are on the same scale.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["l2_penalty", "l2_penalty_grads", "l1_penalty", "l1_penalty_grads", "EarlyStopping"]


def _is_weight(name: str) -> bool:
    return name.startswith("W")


def l2_penalty(params: Mapping[str, np.ndarray], lam: float, m: int) -> float:
    """L2 (weight decay) penalty ``lam / (2 m) * sum_l ||W_l||_F^2``.

    Parameters
    ----------
    params : dict name -> array; weights are the entries whose name starts with ``"W"``.
    lam : regularization strength lambda >= 0.
    m : number of samples (batch size).

    Returns
    -------
    penalty : float
    """
    total = sum(float(np.sum(np.square(w, dtype=np.float64))) for k, w in params.items() if _is_weight(k))
    return lam / (2 * m) * total


def l2_penalty_grads(params: Mapping[str, np.ndarray], lam: float, m: int) -> dict[str, np.ndarray]:
    """Gradient of :func:`l2_penalty`: ``lam / m * W`` for weights, zeros for everything else.

    Parameters
    ----------
    params : dict name -> array.
    lam : regularization strength.
    m : number of samples (batch size).

    Returns
    -------
    grads : dict with the keys of ``params``, each array of its parameter's shape and dtype.
    """
    scale = float(lam) / m
    return {k: scale * w if _is_weight(k) else np.zeros_like(w) for k, w in params.items()}


def l1_penalty(params: Mapping[str, np.ndarray], lam: float, m: int) -> float:
    """L1 penalty ``lam / m * sum_l sum_ij |W_l[i, j]|``.

    Its gradient is ``lam / m * sign(W)``, the L1 analogue of L2's ``lam / m * W``.

    Parameters
    ----------
    params : dict name -> array; weights are the entries whose name starts with ``"W"``.
    lam : regularization strength lambda >= 0.
    m : number of samples (batch size).

    Returns
    -------
    penalty : float
    """
    total = sum(float(np.sum(np.abs(w), dtype=np.float64)) for k, w in params.items() if _is_weight(k))
    return lam / m * total


def l1_penalty_grads(params: Mapping[str, np.ndarray], lam: float, m: int) -> dict[str, np.ndarray]:
    """(Sub)gradient of :func:`l1_penalty`: ``lam / m * sign(W)`` (0 where ``W == 0``), zeros elsewhere.

    Parameters
    ----------
    params : dict name -> array.
    lam : regularization strength.
    m : number of samples (batch size).

    Returns
    -------
    grads : dict with the keys of ``params``, each array of its parameter's shape and dtype.
    """
    scale = float(lam) / m
    return {k: scale * np.sign(w) if _is_weight(k) else np.zeros_like(w) for k, w in params.items()}


class EarlyStopping:
    """Stop training when the validation loss has stopped improving; remember the best weights.

    Call :meth:`step` once per epoch. A call *improves* when
    ``val_loss < best_loss - min_delta``; then ``best_loss``, ``best_epoch`` and a copy of
    every parameter array (``best_params``) are recorded. :meth:`step` returns True once
    ``patience`` consecutive calls brought no improvement.

    Parameters
    ----------
    patience : number of consecutive calls without improvement that stops training (>= 1).
    min_delta : how much lower than ``best_loss`` a loss must be to count as an improvement (>= 0).

    Attributes
    ----------
    best_loss : float, ``inf`` before the first call.
    best_epoch : int or None, index of the best call (calls counted from 0).
    best_params : dict name -> array or None, copies (not references) of the best parameters.
    num_bad_epochs : consecutive calls without improvement so far.
    epoch : number of calls so far.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_loss = float("inf")
        self.best_epoch: int | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.num_bad_epochs = 0
        self.epoch = 0

    def step(self, val_loss: float, params: Mapping[str, np.ndarray]) -> bool:
        """Record one epoch's validation loss; True when training should stop.

        Parameters
        ----------
        val_loss : this epoch's validation loss (NaN never counts as an improvement).
        params : dict name -> array, the current parameters (copied when they are the best so far).

        Returns
        -------
        stop : True once ``patience`` consecutive calls brought no improvement.
        """
        val_loss = float(val_loss)
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = self.epoch
            self.best_params = {k: np.array(v, copy=True) for k, v in params.items()}
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        self.epoch += 1
        return self.num_bad_epochs >= self.patience

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"best_loss={self.best_loss:.4g}, best_epoch={self.best_epoch})")
