"""Training practice: sanity checks, update monitoring, hyperparameter search, ensembles (references for notebook 08).

Small tools that practitioners use around a training loop rather than inside it:

- :func:`expected_initial_loss`: the softmax cross-entropy of a network that knows nothing yet;
- :func:`update_ratio`: how big one update is compared with the weights it changes;
- :func:`sample_log_uniform` and :func:`random_search`: hyperparameters drawn at random, scales on a log axis;
- :func:`ensemble_predict`: the averaged class probabilities of several networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["expected_initial_loss", "update_ratio", "sample_log_uniform", "random_search", "ensemble_predict",
           "SCALES"]

#: The scales a dimension of a search space can take in :func:`random_search`.
SCALES = ("log", "linear")


def expected_initial_loss(num_classes: int) -> float:
    """Softmax cross-entropy of a network whose scores are all equal: ``log(C)`` (natural log).

    With small random weights every class gets probability about ``1/C``, and the loss of
    every sample is ``-log(1/C) = log(C)``: 2.303 for 10 classes.
    """
    return float(math.log(num_classes))


def update_ratio(w: np.ndarray, w_next: np.ndarray) -> float:
    """``||w_next - w|| / ||w||``: the size of one update relative to the weights (Frobenius norms).

    Parameters
    ----------
    w : array of any shape, the weights before the update (not all zeros).
    w_next : array of the same shape, the weights after it.

    Returns
    -------
    ratio : float; about 1e-3 in healthy training, much larger when the learning rate is too high.
    """
    w64 = np.asarray(w, dtype=np.float64)
    delta = np.asarray(w_next, dtype=np.float64) - w64
    return float(np.linalg.norm(delta) / np.linalg.norm(w64))


def sample_log_uniform(low: float, high: float, rng: np.random.Generator,
                       size: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """Values whose logarithm is uniform between ``log(low)`` and ``log(high)`` (``0 < low < high``).

    Each decade (1e-4 to 1e-3, 1e-3 to 1e-2, ...) receives the same share of the samples.

    Returns
    -------
    A float when ``size`` is None, else an array of shape ``size``, all in ``[low, high]``.
    """
    if not 0 < low < high:
        raise ValueError(f"sample_log_uniform needs 0 < low < high, got low={low!r}, high={high!r}")
    out = np.exp(rng.uniform(math.log(low), math.log(high), size=size))
    out = np.clip(out, low, high)  # exp(log(high)) may round a hair above high
    return float(out) if size is None else out


def random_search(train_fn: Callable[[dict[str, float]], float], space: Mapping[str, tuple[float, float, str]],
                  n_trials: int, rng: np.random.Generator) -> list[tuple[dict[str, float], float]]:
    """Try ``n_trials`` configurations drawn at random from ``space``; best (highest score) first.

    Parameters
    ----------
    train_fn : ``train_fn(config) -> score``, higher is better; called once per trial.
    space : name -> ``(low, high, scale)``: ``"log"`` draws with :func:`sample_log_uniform`,
        ``"linear"`` uniformly in ``[low, high]``.
    n_trials : number of configurations to try.
    rng : the source of every random draw.

    Returns
    -------
    results : list of ``n_trials`` pairs ``(config, score)``, ``config`` a dict name -> float,
        sorted by score, highest first.
    """
    for name, (low, high, scale) in space.items():
        if scale not in SCALES:
            raise ValueError(f"space[{name!r}] has scale {scale!r}; use one of {SCALES}")
    results = []
    for _ in range(n_trials):
        config = {}
        for name, (low, high, scale) in space.items():
            config[name] = (sample_log_uniform(low, high, rng) if scale == "log"
                            else float(rng.uniform(low, high)))
        results.append((config, float(train_fn(dict(config)))))
    return sorted(results, key=lambda pair: pair[1], reverse=True)


def ensemble_predict(probs_list: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's class probabilities: the mean of the members' probabilities.

    Parameters
    ----------
    probs_list : list of M arrays (N, C), each row a probability distribution over C classes.

    Returns
    -------
    probs : (N, C), rows summing to 1, in the members' dtype.
    """
    return np.mean(np.stack([np.asarray(p) for p in probs_list]), axis=0)


def grid_search(train_fn: Callable[[dict[str, float]], float], grid: Mapping[str, Sequence[float]]
                ) -> list[tuple[dict[str, float], float]]:
    """Every combination of the values in ``grid`` (name -> values); best (highest score) first."""
    names = list(grid)
    mesh = np.meshgrid(*[np.asarray(grid[n], dtype=float) for n in names], indexing="ij")
    configs = [{n: float(m.flat[i]) for n, m in zip(names, mesh)} for i in range(mesh[0].size)]
    results = [(c, float(train_fn(dict(c)))) for c in configs]
    return sorted(results, key=lambda pair: pair[1], reverse=True)


def refine_space(results: Sequence[tuple[Mapping[str, float], Any]], space: Mapping[str, tuple[float, float, str]],
                 top: int = 3, margin: float = 2.0) -> dict[str, tuple[float, float, str]]:
    """Coarse to fine: a smaller space around the ``top`` best configurations of a first round.

    Each dimension spans the best configurations' values widened by the factor ``margin`` on a
    log dimension (or by ``margin - 1`` times their range, at least 10% of the old range, on a
    linear one), clipped to the old bounds.
    """
    best = [dict(c) for c, _ in list(results)[:top]]
    out = {}
    for name, (low, high, scale) in space.items():
        values = [c[name] for c in best]
        lo, hi = min(values), max(values)
        if scale == "log":
            lo, hi = lo / margin, hi * margin
        else:
            pad = max((hi - lo) * (margin - 1), 0.1 * (high - low)) / 2
            lo, hi = lo - pad, hi + pad
        out[name] = (max(low, lo), min(high, hi), scale)
    return out


def class_weighted_cross_entropy(class_weights: np.ndarray
                                 ) -> Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]:
    """A softmax cross-entropy that weights each sample by its class: ``loss(scores, y) -> (loss, dscores)``.

    ``loss = sum_i w[y_i] * l_i / sum_i w[y_i]``, as ``torch.nn.CrossEntropyLoss(weight=w)``; with equal
    weights it is the plain mean. Used to counter class imbalance (weights about 1 / class frequency).

    Parameters
    ----------
    class_weights : (C,) positive weights.
    """
    w = np.asarray(class_weights, dtype=np.float64)
    if w.ndim != 1 or np.any(w <= 0):
        raise ValueError("class_weights must be a 1-D array of positive weights, one per class")

    def loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        N = scores.shape[0]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        sw = w[y]
        total = sw.sum()
        value = float(-(sw * log_probs[np.arange(N), y]).sum() / total)
        dscores = np.exp(log_probs)
        dscores[np.arange(N), y] -= 1
        dscores *= (sw / total)[:, None]
        return value, dscores.astype(scores.dtype, copy=False)

    return loss
