"""Experiments of notebook 01: activation curves, the collapse of linear stacks, vanishing
gradients, and dying ReLUs.

Every function takes the activation functions to study as arguments: a notebook passes
the student's own ``(forward, backward)`` pairs, the tests pass the library's references.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Pair = tuple[Callable[..., Any], Callable[..., Any]]

__all__ = [
    "curves", "collapse_linear", "linear_stack_gap", "moons_data", "train_on_moons", "collapsed_accuracy",
    "gradient_norms", "unit_states", "dying_relu_run",
]


# --------------------------------------------------------------------------- 1. curves

def curves(pairs: Mapping[str, Pair], x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each activation and its derivative at the points ``x``.

    The derivative is the backward pass with ``dout = 1``: ``backward(ones, cache) = f'(x)``.

    Parameters
    ----------
    pairs : name -> ``(forward(x) -> (out, cache), backward(dout, cache) -> dx)``.
    x : (M,) points.

    Returns
    -------
    values : name -> ``(f(x), f'(x))``, two (M,) arrays.
    """
    out = {}
    for name, (forward, backward) in pairs.items():
        y, cache = forward(x.copy())
        out[name] = (np.asarray(y), np.asarray(backward(np.ones_like(x), cache)))
    return out


# --------------------------------------------------------------------------- 2. linear stacks collapse

def collapse_linear(Ws: Sequence[np.ndarray], bs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The single affine map equal to a stack of affine layers with no activation between them.

    ``((x W1 + b1) W2 + b2) ... = x (W1 W2 ... WL) + b`` with
    ``b = (((b1 W2 + b2) W3 + b3) ...) WL + bL``.

    Parameters
    ----------
    Ws : weights ``(D, H1), (H1, H2), ..., (H_{L-1}, C)``.
    bs : biases ``(H1,), ..., (C,)``.

    Returns
    -------
    W : (D, C)
    b : (C,)
    """
    W, b = Ws[0], bs[0]
    for W_next, b_next in zip(Ws[1:], bs[1:]):
        W, b = W @ W_next, b @ W_next + b_next
    return W, b


def _net_weights(net: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    L = net.num_layers
    return [net.params[f"W{i}"] for i in range(1, L + 1)], [net.params[f"b{i}"] for i in range(1, L + 1)]


def linear_stack_gap(sizes: Sequence[int] = (2, 32, 32, 32, 2), n: int = 200, seed: int = 0) -> dict[str, float]:
    """How far a random stack of affine layers is from its collapsed single layer.

    A :class:`~nnlab.network.FullyConnectedNet` with the identity activation and random
    (He) weights and biases, against ``x W + b`` from :func:`collapse_linear`.

    Returns
    -------
    result : ``max_diff`` (largest |difference| of the scores), ``max_score`` (largest |score|).
    """
    from nnlab.network import FullyConnectedNet

    rng = np.random.default_rng(seed)
    net = FullyConnectedNet(list(sizes), activation="identity", rng=rng)
    for i in range(1, net.num_layers + 1):  # nonzero biases, so the collapsed bias is tested too
        net.params[f"b{i}"] = rng.standard_normal(sizes[i])
    X = rng.standard_normal((n, sizes[0]))
    W, b = collapse_linear(*_net_weights(net))
    scores = net.loss(X)
    return {"max_diff": float(np.max(np.abs(scores - (X @ W + b)))), "max_score": float(np.max(np.abs(scores)))}


def moons_data(seed: int = 0, n_train: int = 400, n_val: int = 200, noise: float = 0.15) -> dict[str, np.ndarray]:
    """Two interleaving half circles (``X_train``, ``y_train``, ``X_val``, ``y_val``), not linearly separable."""
    from nnlab.data import moons

    rng = np.random.default_rng(seed)
    X, y = moons(n_train, rng, noise=noise)
    X_val, y_val = moons(n_val, rng, noise=noise)
    return {"X_train": X, "y_train": y, "X_val": X_val, "y_val": y_val}


def train_on_moons(activation: str | Pair, data: Mapping[str, np.ndarray], hidden: Sequence[int] = (32, 32, 32),
                   num_epochs: int = 60, learning_rate: float = 1e-2, seed: int = 1) -> tuple[Any, dict]:
    """Train a ``[2, *hidden, 2]`` net with ``activation`` (Adam, batches of 50) on the moons.

    Returns
    -------
    net : the trained :class:`~nnlab.network.FullyConnectedNet`.
    history : the trainer's history (``train_acc``, ``val_acc``, ...).
    """
    from nnlab.network import FullyConnectedNet
    from nnlab.optim import adam
    from nnlab.trainer import Trainer

    net = FullyConnectedNet([2, *hidden, 2], activation=activation, rng=np.random.default_rng(seed))
    trainer = Trainer(net, data, update_rule=adam, optim_config={"learning_rate": learning_rate}, batch_size=50,
                      num_epochs=num_epochs, rng=np.random.default_rng(seed + 1), progress=False)
    return net, trainer.train()


def collapsed_accuracy(net: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy of ``net`` and of the single affine layer its weights collapse to (identity activation only).

    Returns
    -------
    (acc_net, acc_collapsed) : floats in [0, 1].
    """
    W, b = collapse_linear(*_net_weights(net))
    return float(np.mean(net.predict(X) == y)), float(np.mean(np.argmax(X @ W + b, axis=1) == y))


# --------------------------------------------------------------------------- 3. vanishing gradients

def gradient_norms(activation: Pair | str, init: str, depth: int = 10, width: int = 64, n: int = 200,
                   seeds: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """Norm of each layer's weight gradient ``||dW_l||`` at initialization, averaged over ``seeds``.

    A ``depth``-layer net (``depth - 1`` hidden layers of ``width`` units) on ``n`` digits
    images, softmax loss, biases zero, weights from ``init`` (``"xavier"`` or ``"he"``).

    Returns
    -------
    norms : (depth,) float64; entry 0 is the layer next to the input.
    """
    from nnlab.data import load_digits
    from nnlab.network import FullyConnectedNet

    digits = load_digits(np.random.default_rng(0))
    X, y = digits["X_train"][:n], digits["y_train"][:n]
    sizes = [X.shape[1]] + [width] * (depth - 1) + [10]
    norms = []
    for seed in seeds:
        net = FullyConnectedNet(sizes, activation=activation, init=init, rng=np.random.default_rng(seed))
        _, grads = net.loss(X, y)
        norms.append([np.linalg.norm(grads[f"W{i}"]) for i in range(1, depth + 1)])
    return np.mean(norms, axis=0)


# --------------------------------------------------------------------------- 4. dying ReLUs

def unit_states(net: Any, activation: Pair, X: np.ndarray) -> tuple[float, float]:
    """Fractions of the hidden units of ``net`` that are dead, and that are negative, on all of ``X``.

    A unit is *negative* when its pre-activation ``z`` is <= 0 on every sample, and *dead*
    when the activation's backward pass gives it no gradient on any sample
    (``backward(ones, cache) == 0`` everywhere): it then never learns again. For ReLU the two
    coincide; a leaky ReLU unit can be negative but is never dead.

    Returns
    -------
    (dead, negative) : fractions over all hidden units of all hidden layers.
    """
    dead, negative = _unit_masks(net, activation, X)
    return float(np.mean(dead)), float(np.mean(negative))


def _unit_masks(net: Any, activation: Pair, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    forward, backward = activation
    h = np.asarray(X, dtype=net.dtype)
    dead, negative = [], []
    for i in range(1, net.num_layers):
        z = h @ net.params[f"W{i}"] + net.params[f"b{i}"]
        h, cache = forward(z)
        grad = backward(np.ones_like(z), cache)
        dead.append(np.all(grad == 0, axis=0))
        negative.append(np.all(z <= 0, axis=0))
    return np.concatenate(dead), np.concatenate(negative)


def dying_relu_run(activation: Pair, lr_high: float = 2.0, high_epochs: int = 1, lr: float = 0.1,
                   num_epochs: int = 10, hidden: Sequence[int] = (100,), seed: int = 1) -> dict[str, Any]:
    """Train on the digits with SGD: ``high_epochs`` epochs at ``lr_high``, then ``lr``; track the units.

    Returns
    -------
    result : dict with ``dead`` and ``negative`` (lists of ``num_epochs + 1`` fractions, from
        :func:`unit_states` on the training set: at initialization, then after each epoch),
        ``val_acc`` (list, per epoch) and ``revived`` (of the units negative on every sample after
        the high-learning-rate epochs, the fraction that are not at the end; nan if there are none).
    """
    from nnlab.data import load_digits
    from nnlab.network import FullyConnectedNet
    from nnlab.optim import sgd
    from nnlab.trainer import Trainer

    digits = load_digits(np.random.default_rng(0))
    X = digits["X_train"]
    net = FullyConnectedNet([X.shape[1], *hidden, 10], activation=activation, rng=np.random.default_rng(seed),
                            dtype=np.float32)
    dead: list[float] = []
    negative: list[float] = []
    masks: list[np.ndarray] = []

    def record(*_: Any) -> None:
        d, neg = _unit_masks(net, activation, X)
        dead.append(float(np.mean(d)))
        negative.append(float(np.mean(neg)))
        masks.append(neg)

    record()

    trainer = Trainer(net, digits, update_rule=sgd, optim_config={"learning_rate": lr_high},
                      lr_decay=lambda lr0, epoch: lr0 if epoch < high_epochs else lr, batch_size=50,
                      num_epochs=num_epochs, rng=np.random.default_rng(seed + 1), progress=False,
                      on_epoch_end=record)
    history = trainer.train()
    after_high, end = masks[high_epochs], masks[-1]
    revived = float(np.mean(~end[after_high])) if after_high.any() else float("nan")
    return {"dead": dead, "negative": negative, "val_acc": history["val_acc"], "revived": revived}
