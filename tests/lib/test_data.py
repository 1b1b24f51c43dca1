"""nnlab.data: shapes, determinism, balance and geometry of the data sets; test-function gradients."""

import numpy as np
import pytest

from nnlab import data
from nnlab.gradcheck import numerical_gradient, relative_error


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a) and set(a) == set(b)


# --------------------------------------------------------------------------- digits

def test_digits_splits():
    d = data.load_digits(np.random.default_rng(0))
    assert set(d) == {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    sizes = {s: len(d[f"y_{s}"]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797
    assert sizes["val"] == pytest.approx(0.2 * 1797, abs=10) and sizes["test"] == pytest.approx(0.2 * 1797, abs=10)
    for s in ("train", "val", "test"):
        X, y = d[f"X_{s}"], d[f"y_{s}"]
        assert X.shape == (len(y), 64) and X.dtype == np.float64
        assert X.min() >= 0 and X.max() <= 1
        assert np.issubdtype(y.dtype, np.integer) and set(np.unique(y)) == set(range(10))
        # Stratified: every class holds about a tenth of every split.
        assert np.bincount(y, minlength=10).min() >= 0.08 * len(y)
    # The three splits partition the data set (as a multiset of (image, label) rows).
    from sklearn.datasets import load_digits as sk

    raw = sk()
    ours = np.concatenate([np.c_[d[f"X_{s}"] * 16, d[f"y_{s}"]] for s in ("train", "val", "test")])
    theirs = np.c_[raw.data, raw.target]
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])


def test_digits_deterministic_and_fractions():
    a = data.load_digits(np.random.default_rng(1))
    b = data.load_digits(np.random.default_rng(1))
    c = data.load_digits(np.random.default_rng(2))
    assert same(a, b) and not same(a, c)
    d = data.load_digits(np.random.default_rng(0), val_fraction=0.1, test_fraction=0.3)
    assert len(d["y_val"]) == pytest.approx(180, abs=10) and len(d["y_test"]) == pytest.approx(539, abs=10)
    with pytest.raises(ValueError):
        data.load_digits(np.random.default_rng(0), val_fraction=0.5, test_fraction=0.5)


# --------------------------------------------------------------------------- gaussian mixture

def test_gaussian_mixture_defaults():
    d = data.gaussian_mixture(np.random.default_rng(0))
    assert d["X_train"].shape == (400, 12) and d["X_test"].shape == (100, 12)
    assert d["y_train"].shape == (400,) and d["y_test"].shape == (100,)
    assert np.bincount(d["y_train"]).tolist() == [200, 200]
    assert np.bincount(d["y_test"]).tolist() == [50, 50]


@pytest.mark.parametrize("separation", [1.0, 3.0])
def test_gaussian_mixture_geometry(separation):
    d = data.gaussian_mixture(np.random.default_rng(0), n_train=20000, n_test=10, dim=5, separation=separation)
    X, y = d["X_train"], d["y_train"]
    mu0, mu1 = X[y == 0].mean(axis=0), X[y == 1].mean(axis=0)
    # 10,000 samples per class: the standard error of a mean is 0.01.
    np.testing.assert_allclose(mu0, -separation / 2, atol=0.05)
    np.testing.assert_allclose(mu1, separation / 2, atol=0.05)
    np.testing.assert_allclose(X[y == 0].var(axis=0), 1.0, atol=0.06)
    np.testing.assert_allclose(X[y == 1].var(axis=0), 1.0, atol=0.06)


def test_gaussian_mixture_deterministic():
    assert same(data.gaussian_mixture(np.random.default_rng(3)), data.gaussian_mixture(np.random.default_rng(3)))
    assert not same(data.gaussian_mixture(np.random.default_rng(3)), data.gaussian_mixture(np.random.default_rng(4)))


# --------------------------------------------------------------------------- 2-D toy sets

def test_spirals():
    X, y = data.spirals(50, 3, np.random.default_rng(0))
    assert X.shape == (150, 2) and y.shape == (150,)
    assert np.bincount(y).tolist() == [50, 50, 50]
    assert np.abs(X).max() <= 1.0 + 1e-12
    X2, y2 = data.spirals(50, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(X, X2)
    X3, _ = data.spirals(50, 3, np.random.default_rng(1), noise=0.0)
    X4, _ = data.spirals(50, 3, np.random.default_rng(2), noise=0.0)
    np.testing.assert_array_equal(X3, X4)  # noise=0 is honoured


def test_moons():
    X, y = data.moons(101, np.random.default_rng(0))
    assert X.shape == (101, 2) and y.shape == (101,)
    assert set(np.unique(y)) == {0, 1}
    X2, _ = data.moons(101, np.random.default_rng(0))
    X3, _ = data.moons(101, np.random.default_rng(1))
    np.testing.assert_array_equal(X, X2)
    assert not np.array_equal(X, X3)


# --------------------------------------------------------------------------- optimization test functions

FUNCTIONS = {
    "quadratic": (data.IllConditionedQuadratic(20.0).f, data.IllConditionedQuadratic(20.0).grad),
    "rosenbrock": (data.rosenbrock, data.rosenbrock_grad),
    "saddle": (data.saddle, data.saddle_grad),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("point", [(0.3, -0.7), (-1.2, 1.0), (2.0, 0.5)])
def test_gradients_are_right(name, point):
    f, grad = FUNCTIONS[name]
    w = np.array(point)
    g = grad(w)
    assert g.shape == (2,)
    assert relative_error(g, numerical_gradient(f, w.copy())) < 1e-8


def test_known_values_and_vectorization():
    q = data.IllConditionedQuadratic(condition=50.0)
    assert q.f(np.zeros(2)) == 0.0 and q.f(np.array([1.0, 1.0])) == pytest.approx(25.5)
    np.testing.assert_allclose(np.linalg.cond(q.hessian), 50.0)
    assert data.rosenbrock(np.array([1.0, 1.0])) == 0.0
    np.testing.assert_array_equal(data.rosenbrock_grad(np.array([1.0, 1.0])), [0.0, 0.0])
    np.testing.assert_array_equal(data.saddle_grad(np.zeros(2)), [0.0, 0.0])
    assert data.saddle(np.array([1.0, 0.0])) > 0 > data.saddle(np.array([0.0, 1.0]))
    grid = np.random.default_rng(0).standard_normal((4, 3, 2))
    for f, grad in FUNCTIONS.values():
        values = f(grid)
        assert values.shape == (4, 3) and grad(grid).shape == (4, 3, 2)
        assert values[1, 2] == pytest.approx(f(grid[1, 2]))


def test_gradient_descent_zigzags_on_the_quadratic():
    q = data.IllConditionedQuadratic(condition=50.0)
    w = np.array([-5.0, 1.0])
    signs = []
    for _ in range(10):
        w = w - 0.038 * q.grad(w)  # just under the stability limit 2 / 50
        signs.append(np.sign(w[1]))
    assert all(a != b for a, b in zip(signs, signs[1:]))  # w_1 flips sign every step
