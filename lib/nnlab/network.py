"""A fully connected network assembled from pluggable layer functions.

Architecture, for ``layer_sizes = [D, H1, ..., H_{L-1}, C]``::

    {affine - [norm] - activation - [dropout]} x (L - 1) - affine - loss

Every building block is an attribute holding a ``(forward, backward)`` pair (or a
function), looked up each time :meth:`FullyConnectedNet.loss` runs, so a notebook can
swap in a student's implementation at any point::

    net = FullyConnectedNet([64, 100, 10], rng=rng)
    net.activation = (my_relu_forward, my_relu_backward)

The model API that :class:`nnlab.trainer.Trainer` relies on: ``params`` (dict name ->
array), ``loss(X, y) -> (loss, grads)``, ``loss(X) -> scores`` and ``predict(X)``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import activations as _act
from . import dropout as _drop
from . import init as _init
from . import layers as _layers
from . import normalization as _norm
from . import regularization as _reg

__all__ = ["FullyConnectedNet", "ACTIVATIONS", "INITS", "NORMALIZATIONS", "REGULARIZERS"]

Pair = tuple[Callable[..., Any], Callable[..., Any]]


def _identity_forward(x: np.ndarray) -> tuple[np.ndarray, None]:
    return x, None


def _identity_backward(dout: np.ndarray, cache: None) -> np.ndarray:
    return dout


def _affine_forward_inplace_bias(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    # layers.affine_forward computes x @ W + b into a second new array; adding b in place
    # to the fresh product gives bit-identical results with one allocation less.
    out = x @ W
    out += b
    return out, (x, W, b)


#: Activation names accepted by ``FullyConnectedNet(activation=...)``.
ACTIVATIONS: dict[str, Pair] = {
    "relu": (_act.relu_forward, _act.relu_backward),
    "leaky_relu": (_act.leaky_relu_forward, _act.leaky_relu_backward),
    "sigmoid": (_act.sigmoid_forward, _act.sigmoid_backward),
    "tanh": (_act.tanh_forward, _act.tanh_backward),
    "softplus": (_act.softplus_forward, _act.softplus_backward),
    "swish": (_act.swish_forward, _act.swish_backward),
    "identity": (_identity_forward, _identity_backward),
}

#: Initializer names accepted by ``FullyConnectedNet(init=...)``.
INITS: dict[str, Callable[..., np.ndarray]] = {
    "zeros": _init.zeros_init,
    "random": _init.random_init,
    "xavier": _init.xavier_init,
    "he": _init.he_init,
}

#: Normalization names accepted by ``FullyConnectedNet(normalization=...)``.
NORMALIZATIONS: dict[str, Pair] = {
    "batchnorm": (_norm.batchnorm_forward, _norm.batchnorm_backward),
    "layernorm": (_norm.layernorm_forward, _norm.layernorm_backward),
}

#: Regularizer names accepted by ``FullyConnectedNet(regularizer=...)``.
REGULARIZERS: dict[str, Pair] = {
    "l2": (_reg.l2_penalty, _reg.l2_penalty_grads),
    "l1": (_reg.l1_penalty, _reg.l1_penalty_grads),
}


def _lookup(kind: str, value: Any, table: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"unknown {kind} {value!r}; choose one of {sorted(table)} "
                             f"or pass your own {'function' if kind == 'init' else '(forward, backward) pair'}") from None
    return value


def _pair(kind: str, value: Any, table: Mapping[str, Pair]) -> Pair:
    pair = _lookup(kind, value, table)
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(callable(f) for f in pair)):
        raise TypeError(f"{kind} must be a name from {sorted(table)} or a (forward, backward) pair "
                        f"of functions, got {value!r}")
    return pair[0], pair[1]


class FullyConnectedNet:
    """Multi-layer perceptron for classification: affine layers, optional normalization and dropout.

    Parameters
    ----------
    layer_sizes : ``[D, H1, ..., C]``: input features, hidden widths, classes (at least 2 entries).
    activation : a name from :data:`ACTIVATIONS` (``"relu"``, ``"tanh"``, ...) or a
        ``(forward(x) -> (out, cache), backward(dout, cache) -> dx)`` pair.
    init : ``init(fan_in, fan_out, rng) -> W`` or a name from :data:`INITS`; used once, here.
    normalization : None, ``"batchnorm"``, ``"layernorm"`` or a ``(forward(x, gamma, beta, param)
        -> (out, cache), backward(dout, cache) -> (dx, dgamma, dbeta))`` pair; applied after
        every hidden affine layer. ``param`` is that layer's dict in :attr:`bn_params`.
    keep_prob : dropout keep probability after every hidden activation; 1.0 means no dropout.
    dropout : ``(forward(x, keep_prob, mode, rng), backward(dout, cache))`` pair.
    regularizer : None, ``"l2"``, ``"l1"`` or a ``(penalty(params, lam, m) -> float,
        penalty_grads(params, lam, m) -> dict)`` pair; ``m`` is the batch size N.
    reg : regularization strength lambda (0 switches the penalty off).
    affine : ``(forward(x, W, b), backward(dout, cache) -> (dx, dW, db))`` pair.
    loss : ``loss(scores, y) -> (loss, dscores)``; stored as the attribute :attr:`loss_fn`.
    rng : numpy random Generator, for the initial weights and the dropout masks.
    dtype : float64 (gradient checks) or float32 (speed); parameters and computations use it.

    Attributes
    ----------
    params : dict name -> array: ``"W1"`` (D, H1), ``"b1"`` (H1,), ..., ``"WL"`` (H_{L-1}, C),
        ``"bL"`` (C,); with normalization also ``"gamma1"``, ``"beta1"`` (H1,), ... for the
        hidden layers. The trainer replaces these arrays as it updates them.
    bn_params : list of L-1 dicts (empty without normalization), one per hidden layer, passed to
        the normalization's forward: ``mode`` (set on every call), ``eps``, ``momentum`` and, for
        batch norm, the running statistics ``running_mean`` and ``running_var`` (H_l,).
    hidden_outputs : list of the L-1 hidden activations (N, H_l) of the last forward pass
        (after the activation, before dropout), for histograms and dead-unit counts.
    num_layers : L, the number of affine layers.
    activation, normalization, keep_prob, dropout, regularizer, reg, affine, loss_fn, rng :
        the constructor's arguments, read on every call to :meth:`loss`.
    """

    def __init__(self, layer_sizes: Sequence[int], *,
                 activation: str | Pair = "relu",
                 init: Callable[[int, int, np.random.Generator], np.ndarray] | str = _init.he_init,
                 normalization: str | Pair | None = None,
                 keep_prob: float = 1.0,
                 dropout: Pair = (_drop.dropout_forward, _drop.dropout_backward),
                 regularizer: str | Pair | None = None,
                 reg: float = 0.0,
                 affine: Pair = (_layers.affine_forward, _layers.affine_backward),
                 loss: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] = _layers.softmax_cross_entropy,
                 rng: np.random.Generator,
                 dtype: Any = np.float64) -> None:
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes must be [D, H1, ..., C] with positive sizes, got {list(layer_sizes)}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"dtype must be a floating type, got {dtype}")
        if not 0 < keep_prob <= 1:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob!r}")
        if not reg >= 0:
            raise ValueError(f"reg must be >= 0, got {reg!r}")
        # Fail early on a bad name rather than at the first call to loss().
        _pair("activation", activation, ACTIVATIONS)
        if normalization is not None:
            _pair("normalization", normalization, NORMALIZATIONS)
        if regularizer is not None:
            _pair("regularizer", regularizer, REGULARIZERS)
        init_fn = _lookup("init", init, INITS)

        self.layer_sizes = sizes
        self.num_layers = len(sizes) - 1
        self.dtype = dtype
        self.activation = activation
        self.init = init
        self.normalization = normalization
        self.keep_prob = keep_prob
        self.dropout = dropout
        self.regularizer = regularizer
        self.reg = reg
        self.affine = affine
        self.loss_fn = loss
        self.rng = rng

        self.params: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            W = np.asarray(init_fn(fan_in, fan_out, rng))
            if W.shape != (fan_in, fan_out):
                raise ValueError(f"init returned shape {W.shape} for layer {i}, expected {(fan_in, fan_out)}")
            self.params[f"W{i}"] = W.astype(dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
        self.bn_params: list[dict[str, Any]] = []
        if normalization is not None:
            for i, h in enumerate(sizes[1:-1], start=1):
                self.params[f"gamma{i}"] = np.ones(h, dtype=dtype)
                self.params[f"beta{i}"] = np.zeros(h, dtype=dtype)
                self.bn_params.append({"mode": "train", "eps": 1e-5, "momentum": 0.9,
                                       "running_mean": np.zeros(h, dtype=dtype),
                                       "running_var": np.ones(h, dtype=dtype)})
        self.hidden_outputs: list[np.ndarray] = []

    def __repr__(self) -> str:
        def name(v: Any) -> str:
            if isinstance(v, str) or v is None:
                return repr(v)
            if isinstance(v, tuple):
                return getattr(v[0], "__name__", "custom")
            return getattr(v, "__name__", "custom")
        return (f"FullyConnectedNet({self.layer_sizes}, activation={name(self.activation)}, "
                f"normalization={name(self.normalization)}, keep_prob={self.keep_prob}, "
                f"regularizer={name(self.regularizer)}, reg={self.reg}, dtype={self.dtype.name})")

    # ------------------------------------------------------------------ forward / backward

    def loss(self, X: np.ndarray, y: np.ndarray | None = None,
             mode: str | None = None) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Class scores, or the loss and the gradient of every parameter.

        Parameters
        ----------
        X : (N, D) inputs (converted to the network's dtype).
        y : (N,) int labels in [0, C), or None.
        mode : ``"train"`` (dropout on, batch statistics) or ``"test"`` (dropout off, running
            statistics). Default: ``"test"`` when ``y`` is None, else ``"train"``.

        Returns
        -------
        scores : (N, C), when ``y`` is None.
        (loss, grads) : otherwise; ``loss`` is a float, the data loss plus the regularizer's
            penalty (with ``m = N``), and ``grads`` a dict keyed like :attr:`params`.
        """
        if mode is None:
            mode = "test" if y is None else "train"
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        X = np.asarray(X)
        if X.ndim != 2:  # e.g. images (N, 8, 8): flatten each sample
            X = X.reshape(X.shape[0], -1)
        X = X.astype(self.dtype, copy=False)
        L = self.num_layers
        params = self.params

        # Every pluggable part is read now, so a swapped attribute takes effect immediately.
        aff_f, aff_b = _pair("affine", self.affine, {})
        act_f, act_b = _pair("activation", self.activation, ACTIVATIONS)
        use_norm = self.normalization is not None
        if use_norm:
            norm_f, norm_b = _pair("normalization", self.normalization, NORMALIZATIONS)
            if len(self.bn_params) != L - 1 or any(f"gamma{i}" not in params for i in range(1, L)):
                raise RuntimeError("normalization was switched on after construction; build a new "
                                   "FullyConnectedNet(..., normalization=...) instead")
        keep_prob = self.keep_prob
        use_dropout = keep_prob < 1
        if use_dropout:
            drop_f, drop_b = _pair("dropout", self.dropout, {})

        if aff_f is _layers.affine_forward:
            aff_f = _affine_forward_inplace_bias  # same result and cache, one temporary fewer

        caches = []
        hidden = []
        h = X
        for i in range(1, L):
            h, aff_cache = aff_f(h, params[f"W{i}"], params[f"b{i}"])
            norm_cache = None
            if use_norm:
                bn_param = self.bn_params[i - 1]
                bn_param["mode"] = mode
                h, norm_cache = norm_f(h, params[f"gamma{i}"], params[f"beta{i}"], bn_param)
            h, act_cache = act_f(h)
            hidden.append(h)
            drop_cache = None
            if use_dropout:
                h, drop_cache = drop_f(h, keep_prob, mode, self.rng)
            caches.append((aff_cache, norm_cache, act_cache, drop_cache))
        scores, last_cache = aff_f(h, params[f"W{L}"], params[f"b{L}"])
        self.hidden_outputs = hidden

        if y is None:
            return scores

        y = np.asarray(y)
        loss, dscores = self.loss_fn(scores, y)
        loss = float(loss)
        grads: dict[str, np.ndarray] = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = aff_b(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            aff_cache, norm_cache, act_cache, drop_cache = caches[i - 1]
            if use_dropout:
                dh = drop_b(dh, drop_cache)
            dh = act_b(dh, act_cache)
            if use_norm:
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = norm_b(dh, norm_cache)
            if i == 1 and aff_b is _layers.affine_backward:
                # The input needs no gradient: skip dX = dout @ W1.T, a third of this layer's work.
                x_in = aff_cache[0]
                grads["W1"], grads["b1"] = x_in.T @ dh, dh.sum(axis=0)
            else:
                dh, grads[f"W{i}"], grads[f"b{i}"] = aff_b(dh, aff_cache)

        if self.regularizer is not None and self.reg:
            penalty, penalty_grads = _pair("regularizer", self.regularizer, REGULARIZERS)
            N = X.shape[0]
            loss += float(penalty(params, self.reg, N))
            for k, g in penalty_grads(params, self.reg, N).items():
                if k in grads:
                    grads[k] = (grads[k] + g).astype(self.dtype, copy=False)
        return loss, grads

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Predicted class of every sample (test mode).

        Parameters
        ----------
        X : (N, D) inputs.
        batch_size : evaluate this many samples at a time (None: all at once).

        Returns
        -------
        labels : (N,) int64 in [0, C).
        """
        X = np.asarray(X)
        if batch_size is None or batch_size >= len(X):
            return np.argmax(self.loss(X, mode="test"), axis=1)
        return np.concatenate([np.argmax(self.loss(X[s:s + batch_size], mode="test"), axis=1)
                               for s in range(0, len(X), batch_size)])
