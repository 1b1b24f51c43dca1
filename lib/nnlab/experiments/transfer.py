"""Experiments of notebook 07: when does transfer learning pay, and how fast may the pretrained layers learn?

The source model is the zoo's CNN pretrained on digits 0-4 (:func:`nnlab.zoo.load_pretrained`). Two target
tasks of five classes each: ``"similar"``, the digits 5-9, and ``"different"``, the digits 5-9 in negative
(white background) with heavy pixel noise. Four strategies, built from the student's functions (``fns``: a
mapping with ``freeze``, ``replace_head``, ``extract_features``, ``param_groups`` and ``train_epoch``):

- ``scratch``: a fresh :class:`~nnlab.zoo.SmallCNN`, every layer trained at ``SCRATCH_LR``;
- ``features + linear``: the frozen backbone's features (computed once) and a new linear head trained on them
  (for three times as many steps: on precomputed features a step costs almost nothing);
- ``fine-tune top``: the first two conv blocks frozen, the last block at ``FINETUNE_LR``, the new head at ``HEAD_LR``;
- ``fine-tune all``: every layer trained, the backbone at ``FINETUNE_LR``, the new head at ``HEAD_LR``;

and a control, ``random features + linear``: the same as ``features + linear`` on a backbone that was never
trained (random weights), which tells how much the pretrained features add to the architecture alone.

Every run uses Adam for the same number of gradient steps (whatever the training set's size), batches of
up to 32, and is seeded; torch runs on one thread with deterministic algorithms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nnlab.zoo import SOURCE_CLASSES, SmallCNN, accuracy, digits_images, load_pretrained

STRATEGIES = ("scratch", "features + linear", "fine-tune top", "fine-tune all")
CONTROL = "random features + linear"
TARGET_CLASSES = (5, 6, 7, 8, 9)
SCRATCH_LR = 3e-3
FINETUNE_LR = 1e-3
HEAD_LR = 1e-2
STEPS = 100
PROBE_STEPS_FACTOR = 3  # a head on precomputed features costs little per step: it trains to convergence
BATCH_SIZE = 32
NOISE = 0.3

Fns = Mapping[str, Callable[..., Any]]


def setup_torch(threads: int = 1) -> None:
    """Reproducible torch: a fixed thread count and deterministic algorithms."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def target_task(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The target task ``"similar"`` (digits 5-9) or ``"different"`` (the same digits, negative and noisy).

    Returns ``X_train`` (about 630, 1, 8, 8), ``y_train``, ``X_test`` (about 270, 1, 8, 8), ``y_test``; labels 0-4.
    """
    if kind not in ("similar", "different"):
        raise ValueError(f"kind must be 'similar' or 'different', got {kind!r}")
    data = digits_images(TARGET_CLASSES, seed=seed)
    if kind == "different":
        gen = torch.Generator().manual_seed(seed + 7)
        for split in ("train", "test"):
            X = data[f"X_{split}"]
            data[f"X_{split}"] = (1.0 - X + NOISE * torch.randn(X.shape, generator=gen)).clamp(0.0, 1.0)
    return data


def subsample(data: Mapping[str, torch.Tensor], n_per_class: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_per_class`` training images of each class (None: all of them), in a seeded order."""
    y = data["y_train"]
    if n_per_class is None:
        return data["X_train"], y
    gen = torch.Generator().manual_seed(seed)
    keep = torch.cat([torch.nonzero(y == c).flatten()[:n_per_class] for c in torch.unique(y)])
    keep = keep[torch.randperm(len(keep), generator=gen)]
    return data["X_train"][keep], y[keep]


class Batches:
    """A minimal data loader: ``(xb, yb)`` batches of ``batch_size``, reshuffled (seeded) on every pass."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH_SIZE, seed: int = 0) -> None:
        self.X, self.y, self.batch_size = X, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.X), generator=self.generator)
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.X[idx], self.y[idx]

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)


def _fit(fns: Fns, model: nn.Module, loader: Batches, groups: list[dict], steps: int) -> list[float]:
    optimizer = torch.optim.Adam(groups)
    loss_fn = nn.CrossEntropyLoss()
    epochs = max(1, round(steps / len(loader)))
    return [fns["train_epoch"](model, loader, optimizer, loss_fn) for _ in range(epochs)]


def train_strategy(fns: Fns, strategy: str, X: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                   steps: int = STEPS, backbone_lr: float = FINETUNE_LR, head_lr: float = HEAD_LR,
                   scratch_lr: float = SCRATCH_LR) -> Callable[[torch.Tensor], torch.Tensor]:
    """Train one strategy on ``X`` (N, 1, 8, 8), ``y`` (N,); returns ``predict(X) -> labels`` (N,)."""
    torch.manual_seed(seed)
    num_classes = 5
    loader = Batches(X, y, seed=seed)
    if strategy == "scratch":
        model = SmallCNN(num_classes=num_classes)
        _fit(fns, model, loader, fns["param_groups"](model, scratch_lr, scratch_lr), steps)
        return lambda Xq: _predict(model, Xq)
    model = SmallCNN(num_classes=num_classes).eval() if strategy == CONTROL else load_pretrained()
    if strategy in ("features + linear", CONTROL):
        fns["freeze"](model)
        fns["replace_head"](model, num_classes)
        head = model.classifier
        features = Batches(fns["extract_features"](model, X), y, seed=seed)
        _fit(fns, head, features, [{"params": list(head.parameters()), "lr": head_lr}], PROBE_STEPS_FACTOR * steps)
        return lambda Xq: _predict(head, fns["extract_features"](model, Xq))
    if strategy == "fine-tune top":
        fns["freeze"](model.features[0])
        fns["freeze"](model.features[1])
    elif strategy != "fine-tune all":
        raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")
    fns["replace_head"](model, num_classes)
    _fit(fns, model, loader, fns["param_groups"](model, backbone_lr, head_lr), steps)
    return lambda Xq: _predict(model, Xq)


def _predict(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(X).argmax(1)


def test_accuracy(predict: Callable[[torch.Tensor], torch.Tensor], data: Mapping[str, torch.Tensor]) -> float:
    return float((predict(data["X_test"]) == data["y_test"]).float().mean())


def accuracy_vs_samples(fns: Fns, kinds: Sequence[str] = ("similar", "different"),
                        sizes: Sequence[int | None] = (5, 10, 25, 50, None),
                        strategies: Sequence[str] = STRATEGIES, seed: int = 0,
                        progress: bool = False) -> dict[str, dict[str, list[float]]]:
    """Test accuracy ``[kind][strategy][i]`` after training on ``sizes[i]`` images per class (None: all)."""
    jobs = [(k, s, n) for k in kinds for s in strategies for n in sizes]
    if progress:
        from tqdm.auto import tqdm
        jobs = tqdm(jobs, desc="training runs", leave=False)
    out: dict[str, dict[str, list[float]]] = {k: {s: [] for s in strategies} for k in kinds}
    tasks = {k: target_task(k, seed) for k in kinds}
    for kind, strategy, n in jobs:
        X, y = subsample(tasks[kind], n, seed)
        out[kind][strategy].append(test_accuracy(train_strategy(fns, strategy, X, y, seed=seed), tasks[kind]))
    return out


def _flat_backbone(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.features.parameters()])


def learning_rates(fns: Fns, backbone_lrs: Sequence[float] = (1e-4, 1e-3, 1e-2, 3e-2),
                   scratch_lrs: Sequence[float] = (3e-4, 3e-3, 3e-2), n_per_class: int = 10,
                   kind: str = "similar", seed: int = 0) -> dict[str, Any]:
    """Fine-tune everything with the head at ``HEAD_LR`` and the backbone at each of ``backbone_lrs``; train
    from scratch at each of ``scratch_lrs``; ``n_per_class`` target images per class.

    Returns ``finetune``: per backbone lr, ``acc`` (target test accuracy), ``drift`` (``||Δθ|| / ||θ||`` of the
    backbone's parameters) and ``source_acc`` (digits 0-4 test accuracy of the fine-tuned backbone with the
    pretrained head put back: what is left of the source task); ``frozen``: the same for backbone lr 0 (features
    + linear); ``scratch``: target accuracy per lr; ``pretrained_source_acc``.
    """
    task = target_task(kind, seed)
    source = digits_images(SOURCE_CLASSES, seed=seed)
    X, y = subsample(task, n_per_class, seed)
    original = load_pretrained()
    theta0 = _flat_backbone(original)

    def measure(lr: float) -> dict[str, float]:
        torch.manual_seed(seed)
        model = load_pretrained()
        if lr == 0:
            fns["freeze"](model.features)
        fns["replace_head"](model, 5)
        _fit(fns, model, Batches(X, y, seed=seed), fns["param_groups"](model, lr, HEAD_LR), STEPS)
        acc = test_accuracy(lambda Xq: _predict(model, Xq), task)
        drift = float((_flat_backbone(model) - theta0).norm() / theta0.norm())
        model.classifier = original.classifier
        return {"acc": acc, "drift": drift, "source_acc": accuracy(model, source["X_test"], source["y_test"])}

    finetune = {lr: measure(lr) for lr in backbone_lrs}
    scratch = {lr: test_accuracy(train_strategy(fns, "scratch", X, y, seed=seed, scratch_lr=lr), task)
               for lr in scratch_lrs}
    return {"finetune": finetune, "frozen": measure(0.0), "scratch": scratch,
            "pretrained_source_acc": accuracy(original, source["X_test"], source["y_test"])}
