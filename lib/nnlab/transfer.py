"""References for notebook 07 (transfer learning, PyTorch): freeze, replace the head, extract features,
per-part learning rates, one training epoch.

A model has a backbone ``model.features`` (images ``(N, C, H, W)`` -> features ``(N, F)``) and a head
``model.classifier`` (the final ``nn.Linear(F, num_classes)``), like :class:`nnlab.zoo.SmallCNN`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["freeze", "replace_head", "extract_features", "param_groups", "train_epoch"]


def freeze(module: nn.Module) -> nn.Module:
    """Stop training every parameter of ``module`` (``requires_grad = False``), in place; returns ``module``.

    Weights, biases and batch norm's scale and shift alike. The mode (train/eval) is left as it is: freezing
    is about gradients, the mode about how batch norm and dropout compute.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Put a new, trainable ``nn.Linear(F, num_classes)`` in ``model.classifier``, in place; returns ``model``.

    ``F`` is the old head's ``in_features``; the new head has a bias and the old head's dtype and device.
    """
    old = model.classifier
    model.classifier = nn.Linear(old.in_features, num_classes, bias=True,
                                 dtype=old.weight.dtype, device=old.weight.device)
    return model


def extract_features(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model.features(X)`` for ``X`` (N, C, H, W), ``batch_size`` images at a time -> ``(N, F)``.

    In eval mode (batch norm uses its running statistics, dropout is off) and without gradients; the model's
    mode is restored afterwards. ``X`` is not modified.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model.features(X[i:i + batch_size]) for i in range(0, max(len(X), 1), batch_size)])
    finally:
        model.train(was_training)


def param_groups(model: nn.Module, backbone_lr: float, head_lr: float) -> list[dict]:
    """Two parameter groups for ``torch.optim``: the trainable parameters of ``model.features`` with
    ``lr=backbone_lr`` and those of ``model.classifier`` with ``lr=head_lr``; each parameter once, frozen
    ones (``requires_grad == False``) left out, a group with no trainable parameter left out."""
    groups = []
    for part, lr in ((model.features, backbone_lr), (model.classifier, head_lr)):
        params = [p for p in part.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr})
    return groups


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """One pass over ``loader`` (batches ``(xb, yb)``) in train mode: zero the gradients, forward, loss,
    backward, step for every batch. Returns the loss averaged over the samples (a batch's mean loss weighted
    by its size), a Python float."""
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    return total / count
