"""Pretrain the zoo's CNN on digits 0-4 and write its checkpoint: ``python -m nnlab.zoo.pretrain``.

Seeded and single-threaded on the CPU, with deterministic algorithms, so a run reproduces the committed
checkpoint's accuracy (about 10 s on one laptop core). Adam, random shifts of up to one pixel as
augmentation, a fixed number of epochs; the source task's test accuracy is stored in the checkpoint.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnlab.zoo import CHECKPOINT, SOURCE_CLASSES, SmallCNN, accuracy, digits_images, random_shift

CHANNELS = (16, 32, 32)


def pretrain(seed: int = 0, epochs: int = 40, batch_size: int = 32, lr: float = 3e-3,
             progress: bool = False) -> tuple[SmallCNN, dict[str, Any]]:
    """Train :class:`SmallCNN` on digits 0-4 (70 % of them; the other 30 % are the test set).

    Returns the model (eval mode) and the checkpoint's dict (``state_dict``, ``source_test_acc``, ...).
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    data = digits_images(SOURCE_CLASSES, seed=seed)
    X, y = data["X_train"], data["y_train"]
    model = SmallCNN(num_classes=len(SOURCE_CLASSES), channels=CHANNELS)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    epoch_iter = range(epochs)
    if progress:
        from tqdm import tqdm
        epoch_iter = tqdm(epoch_iter, desc="pretraining on digits 0-4", unit="epoch")
    for _ in epoch_iter:
        model.train()
        order = torch.randperm(len(X), generator=gen)
        Xa = random_shift(X, gen)
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(Xa[idx]), y[idx]).backward()
            optimizer.step()
        schedule.step()
    model.eval()
    ckpt = {
        "state_dict": model.state_dict(),
        "channels": list(CHANNELS),
        "num_classes": len(SOURCE_CLASSES),
        "source_classes": list(SOURCE_CLASSES),
        "source_train_acc": accuracy(model, X, y),
        "source_test_acc": accuracy(model, data["X_test"], data["y_test"]),
        "seed": seed,
        "epochs": epochs,
        "torch_version": str(torch.__version__),
    }
    return model, ckpt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnlab.zoo.pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT, help=f"where to write the checkpoint ({CHECKPOINT.name} "
                        "in the package by default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible timing)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    _, ckpt = pretrain(seed=args.seed, epochs=args.epochs, progress=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.out)
    print(f"source task (digits 0-4): train accuracy {ckpt['source_train_acc']:.4f}, test accuracy "
          f"{ckpt['source_test_acc']:.4f}; {time.perf_counter() - start:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
