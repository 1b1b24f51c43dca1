"""``CallLog``: a hook that records what a module sees on each call (notebook 07's visible tests use it).

It runs in the student's kernel and, in the trusted re-run, in the student's process (``course.trusted`` copies
this file beside ``course.torch_wire``), so it imports only torch. Students may read it: it is in the student
edition of the library (``course.student_edition``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class CallLog:
    """A forward pre-hook that records each call of the module it watches: ``(batch size, autograd on)``.

    The one hook that crosses: on the other side it watches the rebuilt module, and what it saw comes back.
    (It runs in the student's process there, which could remove it: tests use it to name a mistake, never
    as the only evidence that an answer is right.)
    """

    def __init__(self) -> None:
        self.calls: list[list] = []
        self.handle: Any = None

    def __call__(self, module: nn.Module, args: tuple) -> None:
        first = args[0] if args else None
        size = int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() else -1
        self.calls.append([size, bool(torch.is_grad_enabled())])

    @classmethod
    def attach(cls, module: nn.Module) -> CallLog:
        log = cls()
        log.handle = module.register_forward_pre_hook(log)
        return log

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    @property
    def sizes(self) -> list[int]:
        return [c[0] for c in self.calls]

    @property
    def grad_modes(self) -> list[bool]:
        return [c[1] for c in self.calls]
