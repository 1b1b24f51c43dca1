"""Plots for the experiments (matplotlib).

Every function returns the :class:`matplotlib.figure.Figure` it drew on and never calls
``plt.show()`` or changes global style settings. In a notebook the figure appears at the
end of the cell; end the line with ``;`` (or assign the result) so it is not shown twice.
Functions that take ``ax`` draw on that axes (and return its figure) instead of creating one.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_history", "plot_decision_boundary", "plot_functions", "plot_trajectories",
    "plot_histograms", "plot_confusion_matrix",
]


def _values(result: Any) -> np.ndarray:
    """Array from ``fn(x)``; a ``(out, cache)`` pair from a forward function gives ``out``."""
    if isinstance(result, tuple):
        result = result[0]
    return np.asarray(result)


def plot_history(history: Mapping[str, Any]) -> Figure:
    """Training curves: minibatch loss per iteration (left), train/val accuracy per epoch (right).

    Parameters
    ----------
    history : dict from :meth:`nnlab.trainer.Trainer.train` with ``"loss"``, ``"train_acc"``
        and ``"val_acc"``.

    Returns
    -------
    fig : Figure with 2 axes (1 line on the left, 2 on the right).
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    loss = np.asarray(history["loss"], dtype=float)
    ax_loss.plot(np.arange(1, len(loss) + 1), loss, lw=0.8, label="minibatch loss")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Training loss")
    epochs = np.arange(1, len(history["train_acc"]) + 1)
    ax_acc.plot(epochs, history["train_acc"], "o-", label="train")
    ax_acc.plot(epochs, history["val_acc"], "o-", label="val")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("Accuracy")
    ax_acc.legend()
    fig.tight_layout()
    return fig


def plot_decision_boundary(predict_fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                           ax: Axes | None = None, resolution: int = 200) -> Figure:
    """Regions of the plane assigned to each class, with the data points on top.

    Parameters
    ----------
    predict_fn : ``predict_fn(points (M, 2)) -> (M,) labels``, e.g. ``net.predict``.
    X : (N, 2) points.
    y : (N,) int labels.
    ax : axes to draw on (default: a new figure).
    resolution : grid points per axis.

    Returns
    -------
    fig : the Figure (1 axes when created here).
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D points X of shape (N, 2), got {X.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    pad_x = 0.1 * (np.ptp(X[:, 0]) or 1.0)
    pad_y = 0.1 * (np.ptp(X[:, 1]) or 1.0)
    xs = np.linspace(X[:, 0].min() - pad_x, X[:, 0].max() + pad_x, resolution)
    ys = np.linspace(X[:, 1].min() - pad_y, X[:, 1].max() + pad_y, resolution)
    gx, gy = np.meshgrid(xs, ys)
    labels = np.asarray(predict_fn(np.c_[gx.ravel(), gy.ravel()])).reshape(gx.shape)
    classes = np.unique(np.concatenate([np.unique(y), np.unique(labels)]))
    levels = np.concatenate([classes - 0.5, [classes[-1] + 0.5]])
    ax.contourf(gx, gy, labels, levels=levels, cmap="coolwarm" if len(classes) <= 2 else "tab10",
                alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=14, edgecolors="k", linewidths=0.3,
               cmap="coolwarm" if len(classes) <= 2 else "tab10",
               vmin=classes[0] - 0.5, vmax=classes[-1] + 0.5)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_title("Decision boundary")
    return fig


def plot_functions(functions: Mapping[str, tuple[Callable, Callable | None]], x: np.ndarray) -> Figure:
    """Functions (left) and their derivatives (right) on the same grid.

    Parameters
    ----------
    functions : dict name -> ``(fn, dfn)``; ``fn(x)`` and ``dfn(x)`` return arrays of ``x``'s
        shape (a returned ``(out, cache)`` pair is accepted: its ``out`` is plotted).
        ``dfn`` may be None.
    x : (M,) points.

    Returns
    -------
    fig : Figure with 2 axes, one line per function on each (where ``dfn`` is given).
    """
    x = np.asarray(x)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, (fn, dfn) in functions.items():
        ax_f.plot(x, _values(fn(x)), label=name)
        if dfn is not None:
            ax_d.plot(x, _values(dfn(x)), label=name)
    for ax, title in ((ax_f, "f(x)"), (ax_d, "f'(x)")):
        ax.grid(alpha=0.3)
        ax.set_xlabel("x")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_trajectories(f: Callable[[np.ndarray], float], paths: Mapping[str, np.ndarray],
                      ax: Axes | None = None, bounds: Sequence[float] | None = None,
                      resolution: int = 120, log_levels: bool | None = None) -> Figure:
    """Optimizer paths over the contour lines of a 2-D function.

    Parameters
    ----------
    f : ``f(w) -> float`` for a point ``w`` of shape (2,).
    paths : dict name -> (T, 2) array of iterates, first row the starting point.
    ax : axes to draw on (default: a new figure).
    bounds : ``(xmin, xmax, ymin, ymax)`` of the contour plot (default: around all paths).
    resolution : grid points per axis for the contours.
    log_levels : logarithmically spaced contour levels (default: when ``f >= 0`` on the grid).

    Returns
    -------
    fig : the Figure; one line per path (start marked with a dot, end with a star).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    arrays = {name: np.asarray(p, dtype=float).reshape(-1, 2) for name, p in paths.items()}
    if bounds is None:
        pts = np.concatenate(list(arrays.values())) if arrays else np.zeros((1, 2))
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts) == 0:
            pts = np.zeros((1, 2))
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-3)
        lo, hi = lo - 0.15 * span, hi + 0.15 * span
        bounds = (lo[0], hi[0], lo[1], hi[1])
    xmin, xmax, ymin, ymax = bounds
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution))
    # Point by point: f only has to accept a single (2,) point.
    Z = np.array([float(f(np.array([a, b]))) for a, b in zip(gx.ravel(), gy.ravel())]).reshape(gx.shape)
    if log_levels is None:
        log_levels = bool(Z.min() >= 0)
    if log_levels:
        top = Z.max()
        bottom = max(Z[Z > 0].min() if np.any(Z > 0) else top * 1e-6, top * 1e-6)
        levels = np.geomspace(bottom, top, 25) if top > bottom else 25
    else:
        levels = 25
    ax.contour(gx, gy, Z, levels=levels, cmap="viridis", linewidths=0.7, alpha=0.7)
    for name, p in arrays.items():
        (line,) = ax.plot(p[:, 0], p[:, 1], ".-", ms=3, lw=1.2, label=f"{name} ({len(p) - 1} steps)")
        ax.scatter(p[:1, 0], p[:1, 1], color=line.get_color(), s=30, zorder=3)
        ax.scatter(p[-1:, 0], p[-1:, 1], color=line.get_color(), marker="*", s=90, zorder=3)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("$w_0$")
    ax.set_ylabel("$w_1$")
    if arrays:
        ax.legend(fontsize="small")
    return fig


def plot_histograms(arrays: Mapping[str, np.ndarray] | Sequence[np.ndarray], bins: int = 50,
                    title: str | None = None) -> Figure:
    """One histogram per layer, side by side, each titled with the layer's mean and std.

    Parameters
    ----------
    arrays : dict name -> array, or a list of arrays (named "layer 1", "layer 2", ...), e.g. the
        hidden activations ``net.hidden_outputs`` or the weights of each layer; any shape.
    bins : histogram bins.
    title : figure title.

    Returns
    -------
    fig : Figure with one axes per array.
    """
    if not isinstance(arrays, Mapping):
        arrays = {f"layer {i}": a for i, a in enumerate(arrays, start=1)}
    n = len(arrays)
    if n == 0:
        raise ValueError("plot_histograms needs at least one array")
    fig, axes = plt.subplots(1, n, figsize=(min(2.6 * n + 1, 18), 2.8), squeeze=False)
    for ax, (name, a) in zip(axes[0], arrays.items()):
        a = np.asarray(a, dtype=float).ravel()
        ax.hist(a, bins=bins, color="C0")
        ax.set_title(f"{name}\nmean {a.mean():.2g}, std {a.std():.2g}", fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str] | None = None,
                          normalize: bool = False, ax: Axes | None = None) -> Figure:
    """Confusion matrix as an annotated heat map (rows: true class, columns: predicted class).

    Parameters
    ----------
    cm : (C, C) counts, ``cm[i, j]`` = samples of class i predicted as j.
    class_names : C tick labels (default 0 .. C-1).
    normalize : show each row as fractions of the true class (per-class recall on the diagonal).
    ax : axes to draw on (default: a new figure).

    Returns
    -------
    fig : the Figure (1 axes when created here).
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix, got shape {cm.shape}")
    C = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(C))]
    if len(names) != C:
        raise ValueError(f"{len(names)} class names for a {C}-class confusion matrix")
    shown = cm.astype(float)
    if normalize:
        rows = shown.sum(axis=1, keepdims=True)
        shown = np.divide(shown, rows, out=np.zeros_like(shown), where=rows > 0)
    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.5 * C + 2.5, 0.5 * C + 2.2))
    else:
        fig = ax.figure
    ax.imshow(shown, cmap="Blues", vmin=0)
    top = shown.max() if shown.size else 0
    for i in range(C):
        for j in range(C):
            text = f"{shown[i, j]:.2f}" if normalize else f"{cm[i, j]:g}"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if top and shown[i, j] > 0.6 * top else "black")
    ax.set_xticks(range(C), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(C), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (row-normalized)" if normalize else ""))
    if own_figure:
        fig.tight_layout()
    return fig
