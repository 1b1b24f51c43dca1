"""nnlab.plots: every function returns a Figure with the expected axes and lines (Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nnlab import activations as A  # noqa: E402
from nnlab import data, plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_history():
    history = {"loss": list(np.linspace(2, 0.5, 30)), "train_acc": [0.5, 0.7, 0.8], "val_acc": [0.4, 0.6, 0.7],
               "train_loss": [1.0, 0.8, 0.6], "val_loss": [1.1, 0.9, 0.8], "epochs_run": 3, "stopped_early": False}
    fig = plots.plot_history(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[0].lines[0].get_xdata()) == 30
    assert len(fig.axes[1].lines) == 2


def test_plot_decision_boundary_new_and_given_axes():
    X, y = data.moons(60, np.random.default_rng(0))
    predict = lambda P: (P[:, 1] > 0.25).astype(int)  # noqa: E731
    fig = plots.plot_decision_boundary(predict, X, y)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    fig2, axes = plt.subplots(1, 2)
    assert plots.plot_decision_boundary(predict, X, y, ax=axes[1]) is fig2
    assert axes[1].collections and not axes[0].collections


def test_plot_decision_boundary_with_a_network_and_three_classes():
    from nnlab.network import FullyConnectedNet

    X, y = data.spirals(20, 3, np.random.default_rng(0))
    net = FullyConnectedNet([2, 8, 3], rng=np.random.default_rng(0), dtype=np.float32)
    fig = plots.plot_decision_boundary(net.predict, X, y)
    assert len(fig.axes) == 1


def test_plot_functions():
    funcs = {
        "sigmoid": (lambda x: A.sigmoid_forward(x)[0], lambda x: A.sigmoid_backward(np.ones_like(x), A.sigmoid_forward(x)[1])),
        "relu": (A.relu_forward, None),  # a (out, cache) forward is accepted; no derivative
        "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    }
    fig = plots.plot_functions(funcs, np.linspace(-4, 4, 50))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2


def test_plot_trajectories():
    q = data.IllConditionedQuadratic()
    paths = {"sgd": np.array([[-4.0, 1.0], [-3.9, -0.9], [-3.8, 0.8]]),
             "adam": np.array([[-4.0, 1.0], [-3.0, 0.5]])}
    fig = plots.plot_trajectories(q.f, paths)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].lines) == 2
    fig2, ax = plt.subplots()
    assert plots.plot_trajectories(data.saddle, {"gd": np.array([[1.0, 0.01], [0.5, 0.02]])}, ax=ax) is fig2
    assert len(ax.lines) == 1


def test_plot_histograms_list_and_dict():
    rng = np.random.default_rng(0)
    fig = plots.plot_histograms([rng.standard_normal((10, 5)) for _ in range(4)], title="activations")
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    fig = plots.plot_histograms({"W1": rng.standard_normal(100)})
    assert len(fig.axes) == 1 and fig.axes[0].patches


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix(normalize):
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    fig = plots.plot_confusion_matrix(cm, class_names=["a", "b", "c"], normalize=normalize)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].texts) == 9
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]


def test_no_global_style_change():
    before = dict(matplotlib.rcParams)
    plots.plot_history({"loss": [1.0, 0.5], "train_acc": [0.5], "val_acc": [0.5]})
    plots.plot_confusion_matrix(np.eye(2))
    assert dict(matplotlib.rcParams) == before
