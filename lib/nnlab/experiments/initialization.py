"""Experiments of notebook 02: symmetry, activation statistics, init schemes compared, per-layer speed, log C.

Every function takes initializers ``init_fn(fan_in, fan_out, rng) -> W (fan_in, fan_out)`` (the
student's own, in the notebook) and plugs them into :class:`nnlab.network.FullyConnectedNet` and
:class:`nnlab.trainer.Trainer`. Everything is deterministic given the seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..data import gaussian_mixture
from ..network import FullyConnectedNet
from ..optim import sgd
from ..trainer import Trainer, evaluate

InitFn = Callable[[int, int, np.random.Generator], np.ndarray]

#: A tanh unit counts as saturated when ``|tanh(z)| > SATURATED`` (its derivative is then below 0.02).
SATURATED = 0.99


def mixture_data(seed: int = 0) -> dict[str, np.ndarray]:
    """The 12-D two-class Gaussian mixture (400 train / 100 test, means 1 apart in every dimension).

    Returns the dict the :class:`Trainer` wants: the test split is passed as its validation split,
    so the per-epoch ``val_*`` numbers of a history are test numbers.
    """
    d = gaussian_mixture(np.random.default_rng(seed), n_train=400, n_test=100, dim=12, separation=1.0)
    return {"X_train": d["X_train"], "y_train": d["y_train"], "X_val": d["X_test"], "y_val": d["y_test"]}


def _unit_spread(W: np.ndarray, b: np.ndarray) -> float:
    """Largest difference between the incoming weights (and bias) of any unit and those of unit 0."""
    Wb = np.vstack([W, b[None, :]])
    return float(np.max(np.abs(Wb - Wb[:, :1])))


def symmetry_experiment(inits: Mapping[str, InitFn], *, hidden: int = 16, num_epochs: int = 30,
                        learning_rate: float = 0.1, batch_size: int = 50, seed: int = 0,
                        n_show: int = 40) -> dict[str, dict[str, Any]]:
    """Train a ``[12, H, H, 2]`` tanh net from each initializer; do its hidden units ever differ?

    Parameters
    ----------
    inits : dict name -> initializer.
    hidden : H, the width of both hidden layers.
    num_epochs, learning_rate, batch_size : plain SGD on the Gaussian mixture.
    seed : seed of the initializer's and the minibatch order's rng (the data are fixed).
    n_show : number of test samples whose first-layer activations are returned.

    Returns
    -------
    results : dict name -> dict with
        ``"spread"`` : (2, num_epochs + 1), per hidden layer and epoch (0 = before training), the largest
        difference between the incoming weights and bias of any unit and those of unit 0;
        ``"weight_norm"`` : (2, num_epochs + 1), the Frobenius norm of W1 and W2;
        ``"hidden"`` : (n_show, H), the first hidden layer's activations on test samples after training;
        ``"train_acc"``, ``"test_acc"`` : floats after training.
    """
    data = mixture_data()
    results: dict[str, dict[str, Any]] = {}
    for name, init_fn in inits.items():
        rng = np.random.default_rng(seed)
        net = FullyConnectedNet([12, hidden, hidden, 2], activation="tanh", init=init_fn, rng=rng)
        spread: list[list[float]] = []
        norms: list[list[float]] = []

        def record(trainer: Any = None, epoch: int = -1, net: FullyConnectedNet = net) -> None:
            p = net.params
            spread.append([_unit_spread(p[f"W{i}"], p[f"b{i}"]) for i in (1, 2)])
            norms.append([float(np.linalg.norm(p[f"W{i}"])) for i in (1, 2)])

        record()
        trainer = Trainer(net, data, update_rule=sgd, optim_config={"learning_rate": learning_rate},
                          batch_size=batch_size, num_epochs=num_epochs, rng=rng, progress=False,
                          on_epoch_end=record)
        history = trainer.train()
        net.loss(data["X_val"][:n_show])
        results[name] = {"spread": np.array(spread).T, "weight_norm": np.array(norms).T,
                         "hidden": net.hidden_outputs[0].copy(),
                         "train_acc": history["train_acc"][-1], "test_acc": history["val_acc"][-1]}
    return results


def activation_statistics(inits: Mapping[str, InitFn], activation: str, *, depth: int = 10, width: int = 256,
                          n: int = 500, seed: int = 0, bins: int = 50) -> dict[str, dict[str, np.ndarray]]:
    """Hidden activations layer by layer in a deep net at initialization, for each initializer.

    The net is ``[width] * (depth + 1) + [10]`` with ``activation`` after every hidden layer; the
    input is ``n`` standard normal samples. Histograms: for ``"tanh"`` of the values on [-1, 1];
    otherwise (ReLU, whose scale can run from 1e-12 to 1e12) of ``log10`` of the positive values,
    on [-14, 14], the zeros counted apart in ``"zero"``.

    Returns
    -------
    stats : dict name -> dict with
        ``"std"`` : (depth,) standard deviation of each hidden layer's activations;
        ``"hist"`` : (depth, bins) fraction of the layer's activations in each bin;
        ``"edges"`` : (bins + 1,) bin edges (values for tanh, log10 values otherwise);
        ``"saturated"`` : (depth,) fraction with ``|a| > 0.99`` (tanh: saturated units);
        ``"zero"`` : (depth,) fraction of exact zeros.
    """
    rng_x = np.random.default_rng(seed)
    X = rng_x.standard_normal((n, width))
    log_scale = activation != "tanh"
    edges = np.linspace(-14, 14, bins + 1) if log_scale else np.linspace(-1, 1, bins + 1)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, init_fn in inits.items():
        net = FullyConnectedNet([width] * (depth + 1) + [10], activation=activation, init=init_fn,
                                rng=np.random.default_rng(seed + 1))
        with np.errstate(over="ignore", invalid="ignore"):
            net.loss(X)
        std, hist, sat, zero = [], [], [], []
        for a in net.hidden_outputs:
            a = a.ravel()
            std.append(float(np.std(a)))
            sat.append(float(np.mean(np.abs(a) > SATURATED)))
            zero.append(float(np.mean(a == 0)))
            if log_scale:
                pos = a[a > 0]
                with np.errstate(divide="ignore"):
                    counts, _ = np.histogram(np.log10(pos), bins=edges)
            else:
                counts, _ = np.histogram(a, bins=edges)
            hist.append(counts / a.size)
        out[name] = {"std": np.array(std), "hist": np.array(hist), "edges": edges,
                     "saturated": np.array(sat), "zero": np.array(zero)}
    return out


def _saturated_fraction(net: FullyConnectedNet, X: np.ndarray) -> float:
    net.loss(X)
    return float(np.mean(np.concatenate([np.abs(h).ravel() > SATURATED for h in net.hidden_outputs])))


def compare_inits(inits: Mapping[str, InitFn], *, seeds: Sequence[int] = (0, 1, 2), hidden: Sequence[int] = (64, 64),
                  num_epochs: int = 40, learning_rate: float = 0.1, batch_size: int = 50,
                  data_seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Train the same tanh net on the Gaussian mixture from each initializer, over several seeds.

    Net ``[12, *hidden, 2]``, tanh, plain SGD. The data are fixed (``data_seed``); each seed gives
    another draw of the initial weights and another minibatch order.

    Returns
    -------
    results : dict name -> dict with, for S seeds and E = num_epochs,
        ``"train_loss"``, ``"train_acc"``, ``"test_acc"`` : (S, E + 1), column 0 before training;
        ``"saturated_init"``, ``"saturated_final"`` : (S,), fraction of hidden tanh units with
        ``|h| > 0.99`` on the training set, before and after training.
    """
    data = mixture_data(data_seed)
    results: dict[str, dict[str, np.ndarray]] = {}
    for name, init_fn in inits.items():
        rows: dict[str, list] = {k: [] for k in ("train_loss", "train_acc", "test_acc", "saturated_init",
                                                  "saturated_final")}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            net = FullyConnectedNet([12, *hidden, 2], activation="tanh", init=init_fn, rng=rng)
            rows["saturated_init"].append(_saturated_fraction(net, data["X_train"]))
            loss0, acc0 = evaluate(net, data["X_train"], data["y_train"])
            _, test0 = evaluate(net, data["X_val"], data["y_val"])
            history = Trainer(net, data, update_rule=sgd, optim_config={"learning_rate": learning_rate},
                              batch_size=batch_size, num_epochs=num_epochs, rng=rng, progress=False).train()
            rows["train_loss"].append([loss0, *history["train_loss"]])
            rows["train_acc"].append([acc0, *history["train_acc"]])
            rows["test_acc"].append([test0, *history["val_acc"]])
            rows["saturated_final"].append(_saturated_fraction(net, data["X_train"]))
        results[name] = {k: np.array(v, dtype=np.float64) for k, v in rows.items()}
    return results


def layer_weight_changes(init_fn: InitFn, *, activation: str = "relu", hidden: Sequence[int] = (64, 64, 64),
                         seeds: Sequence[int] = (0, 1, 2), num_epochs: int = 30, learning_rate: float = 0.05,
                         batch_size: int = 50, data_seed: int = 0) -> dict[str, np.ndarray]:
    """How fast does each layer's weight matrix move, epoch by epoch? (Gaussian mixture, plain SGD.)

    Two measures per layer ``l`` and epoch ``t`` (weights ``W_l(t)`` after ``t`` epochs, T = num_epochs):

    - relative change ``||W_l(t) - W_l(t-1)|| / ||W_l(t-1)||`` (Frobenius norms), t = 1..T;
    - fraction of the way still to go ``||W_l(t) - W_l(T)|| / ||W_l(0) - W_l(T)||``, t = 0..T
      (1 at the start, 0 at the end; a layer that is "done" early drops fast).

    Returns
    -------
    changes : dict with ``"relative_change"`` (S, L, T), ``"remaining"`` (S, L, T + 1),
        ``"absolute_change"`` (S, L, T) ``||W_l(t) - W_l(t-1)||``, and ``"test_acc"`` (S,),
        for S seeds and L = len(hidden) + 1 layers.
    """
    data = mixture_data(data_seed)
    sizes = [12, *hidden, 2]
    L = len(sizes) - 1
    rel, rem, absolute, accs = [], [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        net = FullyConnectedNet(sizes, activation=activation, init=init_fn, rng=rng)
        snaps = [[net.params[f"W{i}"].copy() for i in range(1, L + 1)]]
        history = Trainer(net, data, update_rule=sgd, optim_config={"learning_rate": learning_rate},
                          batch_size=batch_size, num_epochs=num_epochs, rng=rng, progress=False,
                          on_epoch_end=lambda t, e: snaps.append([t.model.params[f"W{i}"].copy()
                                                                  for i in range(1, L + 1)])).train()
        W = [np.array([s[i] for s in snaps]) for i in range(L)]  # each (T + 1, fan_in, fan_out)
        step = [np.linalg.norm(np.diff(w, axis=0), axis=(1, 2)) for w in W]
        absolute.append(step)
        rel.append([s / np.linalg.norm(w[:-1], axis=(1, 2)) for s, w in zip(step, W)])
        rem.append([np.linalg.norm(w - w[-1], axis=(1, 2)) / np.linalg.norm(w[0] - w[-1]) for w in W])
        accs.append(history["val_acc"][-1])
    return {"relative_change": np.array(rel), "remaining": np.array(rem), "absolute_change": np.array(absolute),
            "test_acc": np.array(accs)}


def initial_losses(inits: Mapping[str, InitFn], classes: Sequence[int], *, activation: str = "relu",
                   hidden: Sequence[int] = (100, 100), dim: int = 64, n: int = 500, seed: int = 0,
                   last_layer_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Softmax cross-entropy of a freshly initialized ``[dim, *hidden, C]`` net, for each C.

    Inputs are standard normal, labels uniform over the C classes. A net whose initial scores are
    all near 0 predicts 1/C for every class, so its loss is ``log C``. ``last_layer_scale``
    multiplies the output layer's initial weights (a common way to start at ``log C``).

    Returns
    -------
    losses : dict name -> (len(classes),) float64
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    labels = {c: rng.integers(0, c, size=n) for c in classes}
    out: dict[str, np.ndarray] = {}
    for name, init_fn in inits.items():
        losses = []
        for c in classes:
            net = FullyConnectedNet([dim, *hidden, c], activation=activation, init=init_fn,
                                    rng=np.random.default_rng(seed + c))
            net.params[f"W{net.num_layers}"] *= last_layer_scale
            losses.append(evaluate(net, X, labels[c])[0])
        out[name] = np.array(losses)
    return out
