"""Data sets and test functions for the experiments; all offline and deterministic given ``rng``.

Classification data: ``X`` is ``(N, D)`` float64, ``y`` is ``(N,)`` int64.
Optimization test functions take a point ``w`` of shape ``(2,)`` (or ``(..., 2)`` for a
grid of points) and return the value (a float, or ``(...)``) or the gradient (shape of ``w``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "load_digits", "gaussian_mixture", "spirals", "moons",
    "IllConditionedQuadratic", "rosenbrock", "rosenbrock_grad", "saddle", "saddle_grad",
]


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def load_digits(rng: np.random.Generator, val_fraction: float = 0.2,
                test_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes), split.

    Pixels are scaled from [0, 16] to [0, 1]. The split is stratified: every class is
    divided in the same proportions, so the classes stay balanced in every split. No
    download: the data ship with scikit-learn.

    Parameters
    ----------
    rng : numpy random Generator for the split and the order of the samples.
    val_fraction : fraction of each class that goes to the validation set.
    test_fraction : fraction of each class that goes to the test set.

    Returns
    -------
    data : dict with ``X_train`` (N_train, 64), ``y_train`` (N_train,), ``X_val``, ``y_val``,
        ``X_test``, ``y_test``; X float64 in [0, 1], y int64 in [0, 10).
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must be < 1")
    digits = _sk_load_digits()
    X = (digits.data / 16.0).astype(np.float64)
    y = digits.target.astype(np.int64)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    data: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        idx = rng.permutation(np.concatenate(parts[split]))
        data[f"X_{split}"] = X[idx]
        data[f"y_{split}"] = y[idx]
    return data


def _two_gaussians(n: int, dim: int, separation: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros(n, dtype=np.int64)
    y[n // 2:] = 1
    y = rng.permutation(y)
    means = (y[:, None] - 0.5) * separation  # -separation/2 for class 0, +separation/2 for class 1
    X = means + rng.standard_normal((n, dim))
    return X, y


def gaussian_mixture(rng: np.random.Generator, n_train: int = 400, n_test: int = 100, dim: int = 12,
                     separation: float = 1.0) -> dict[str, np.ndarray]:
    """Two classes, each an isotropic unit-variance Gaussian in ``dim`` dimensions.

    Class 0 has mean ``-separation/2`` and class 1 mean ``+separation/2`` in every coordinate,
    so the means are ``separation`` apart in every dimension (``separation * sqrt(dim)`` in
    Euclidean distance). Each split holds ``n // 2`` samples of class 0 and the rest of class 1,
    in random order.

    Parameters
    ----------
    rng : numpy random Generator.
    n_train, n_test : samples in each split.
    dim : D, the number of features.
    separation : distance between the class means in each coordinate.

    Returns
    -------
    data : dict with ``X_train`` (n_train, dim), ``y_train`` (n_train,), ``X_test`` (n_test, dim),
        ``y_test`` (n_test,).
    """
    X_train, y_train = _two_gaussians(int(n_train), int(dim), separation, rng)
    X_test, y_test = _two_gaussians(int(n_test), int(dim), separation, rng)
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


def spirals(n_per_class: int, num_classes: int, rng: np.random.Generator,
            noise: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spirals, one arm per class (the classic non-linearly separable toy set).

    Arm ``c`` has radius growing linearly from 0 to 1 while its angle sweeps 4 radians,
    starting at ``c * 2 pi / num_classes``; Gaussian noise of std ``noise`` (in radians)
    is added to every angle.

    Parameters
    ----------
    n_per_class : samples per class.
    num_classes : number of classes (arms).
    rng : numpy random Generator.
    noise : standard deviation of the angular noise.

    Returns
    -------
    X : (n_per_class * num_classes, 2) points in [-1, 1]^2.
    y : (n_per_class * num_classes,) int64 labels, grouped by class.
    """
    n, k = int(n_per_class), int(num_classes)
    r = np.tile(np.linspace(0.0, 1.0, n), k)
    start = np.repeat(np.arange(k) * 2 * np.pi / k, n)
    t = start + np.tile(np.linspace(0.0, 4.0, n), k) + noise * rng.standard_normal(n * k)
    X = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    y = np.repeat(np.arange(k, dtype=np.int64), n)
    return X, y


def moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's ``make_moons``, seeded from ``rng``).

    Parameters
    ----------
    n : total number of samples (``n // 2`` in class 0, the rest in class 1).
    rng : numpy random Generator.
    noise : standard deviation of the Gaussian noise added to the points.

    Returns
    -------
    X : (n, 2) float64.
    y : (n,) int64.
    """
    from sklearn.datasets import make_moons

    seed = int(rng.integers(2**31 - 1))
    X, y = make_moons(n_samples=int(n), noise=noise, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


class IllConditionedQuadratic:
    """``f(w) = 1/2 (w_0^2 + condition * w_1^2)``: a long narrow valley, minimum 0 at the origin.

    The Hessian is ``diag(1, condition)``; its condition number is ``condition``, so gradient
    descent with a step size stable along ``w_1`` crawls along ``w_0`` (and zig-zags across
    the valley when the step is near the stability limit ``2 / condition``).

    Parameters
    ----------
    condition : ratio of the largest to the smallest curvature (>= 1).

    Attributes
    ----------
    hessian : (2, 2) array ``diag(1, condition)``.
    minimum : (2,) array, the minimizer (the origin).
    """

    def __init__(self, condition: float = 50.0) -> None:
        if not condition >= 1:
            raise ValueError(f"condition must be >= 1, got {condition!r}")
        self.condition = float(condition)
        self.hessian = np.diag([1.0, self.condition])
        self.minimum = np.zeros(2)

    def f(self, w: np.ndarray) -> float | np.ndarray:
        """Value at ``w`` (2,) (a float) or at every point of ``w`` (..., 2)."""
        w = np.asarray(w, dtype=np.float64)
        out = 0.5 * (w[..., 0] ** 2 + self.condition * w[..., 1] ** 2)
        return float(out) if out.ndim == 0 else out

    def grad(self, w: np.ndarray) -> np.ndarray:
        """Gradient ``(w_0, condition * w_1)``, shape of ``w``."""
        w = np.asarray(w, dtype=np.float64)
        return np.stack([w[..., 0], self.condition * w[..., 1]], axis=-1)

    def __repr__(self) -> str:
        return f"IllConditionedQuadratic(condition={self.condition})"


def rosenbrock(w: np.ndarray) -> float | np.ndarray:
    """Rosenbrock's banana ``(1 - x)^2 + 100 (y - x^2)^2`` at ``w = (x, y)``; minimum 0 at (1, 1).

    Parameters
    ----------
    w : (2,) point or (..., 2) points.

    Returns
    -------
    value : float, or (...) array.
    """
    w = np.asarray(w, dtype=np.float64)
    x, y = w[..., 0], w[..., 1]
    out = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    return float(out) if out.ndim == 0 else out


def rosenbrock_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of :func:`rosenbrock`: ``(-2 (1 - x) - 400 x (y - x^2), 200 (y - x^2))``, shape of ``w``."""
    w = np.asarray(w, dtype=np.float64)
    x, y = w[..., 0], w[..., 1]
    return np.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], axis=-1)


def saddle(w: np.ndarray) -> float | np.ndarray:
    """Saddle ``x^2 - y^2`` at ``w = (x, y)``: a minimum along x, a maximum along y, at the origin.

    Gradient descent started on the x axis converges to the saddle point; any offset in y
    grows and escapes, slowly at first because the gradient is tiny near the origin.

    Parameters
    ----------
    w : (2,) point or (..., 2) points.

    Returns
    -------
    value : float, or (...) array.
    """
    w = np.asarray(w, dtype=np.float64)
    out = w[..., 0] ** 2 - w[..., 1] ** 2
    return float(out) if out.ndim == 0 else out


def saddle_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of :func:`saddle`: ``(2x, -2y)``, shape of ``w``."""
    w = np.asarray(w, dtype=np.float64)
    return np.stack([2 * w[..., 0], -2 * w[..., 1]], axis=-1)
