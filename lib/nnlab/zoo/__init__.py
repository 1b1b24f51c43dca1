"""The course's model zoo: a small CNN pretrained on digits 0-4, shipped as a checkpoint (no download).

``load_pretrained()`` rebuilds :class:`SmallCNN` and loads ``digits04_cnn.pt`` with
``torch.load(..., weights_only=True)``. The checkpoint is made by ``python -m nnlab.zoo.pretrain``
(seeded, one CPU thread, about 10 s); it records the source task's test accuracy it reached.

Images are ``(N, 1, 8, 8)`` float32 in [0, 1] (scikit-learn's digits). ``model.features`` maps them
to ``(N, 128)`` features; ``model.classifier`` is the final ``nn.Linear(128, num_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT = Path(__file__).with_name("digits04_cnn.pt")
SOURCE_CLASSES = (0, 1, 2, 3, 4)


class SmallCNN(nn.Module):
    """Three conv blocks (conv 3x3, batch norm, ReLU) and a linear head.

    ``features``: ``(N, 1, 8, 8) -> (N, F)``, ``F = 4 * channels[-1]``: block 0 at 8x8, block 1 max-pooled to
    4x4, block 2 averaged over 2x2 regions (keeping the layout: top/bottom, left/right), then flattened.
    ``classifier``: ``nn.Linear(F, num_classes)``.
    """

    def __init__(self, num_classes: int = 5, channels: Sequence[int] = (16, 32, 32)) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(c2, c3, 3, padding=1), nn.BatchNorm2d(c3), nn.ReLU(), nn.AdaptiveAvgPool2d(2)),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_checkpoint(path: Path | str = CHECKPOINT) -> dict[str, Any]:
    """The checkpoint's dict: ``state_dict``, ``channels``, ``num_classes``, ``source_test_acc``, ``seed``, ..."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}: create it with `python -m nnlab.zoo.pretrain`.")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(path: Path | str = CHECKPOINT) -> SmallCNN:
    """The pretrained :class:`SmallCNN` (5 classes: digits 0-4), in eval mode, every parameter trainable."""
    ckpt = load_checkpoint(path)
    model = SmallCNN(num_classes=int(ckpt["num_classes"]), channels=tuple(int(c) for c in ckpt["channels"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``X`` (N, 1, 8, 8) that ``model`` classifies as ``y`` (N,), in eval mode (mode restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            correct += int((model(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(X), 1)


def digits_images(classes: Sequence[int] = SOURCE_CLASSES, seed: int = 0,
                  test_fraction: float = 0.3) -> dict[str, torch.Tensor]:
    """Digits of ``classes`` as ``(N, 1, 8, 8)`` float32 images in [0, 1], labels renumbered 0..len(classes)-1.

    The split is stratified and fixed by ``seed`` (the library's ``load_digits``). Returns ``X_train``,
    ``y_train``, ``X_test``, ``y_test`` (labels int64).
    """
    from nnlab.data import load_digits

    d = load_digits(np.random.default_rng(seed), val_fraction=0.0, test_fraction=test_fraction)
    out: dict[str, torch.Tensor] = {}
    lookup = {c: i for i, c in enumerate(classes)}
    for split in ("train", "test"):
        keep = np.isin(d[f"y_{split}"], classes)
        out[f"X_{split}"] = torch.tensor(d[f"X_{split}"][keep].reshape(-1, 1, 8, 8), dtype=torch.float32)
        out[f"y_{split}"] = torch.tensor([lookup[int(c)] for c in d[f"y_{split}"][keep]], dtype=torch.int64)
    return out


def random_shift(X: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Each image moved by up to ``max_shift`` pixels in each direction (zeros fill in): augmentation."""
    n = X.shape[0]
    padded = nn.functional.pad(X, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    h, w = X.shape[-2:]
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    idx = torch.arange(n)[:, None, None]
    return padded[idx, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
