"""Named mistakes: the failure messages of the hidden checks, each with a stable identifier.

Every module of :mod:`course.checks` keeps, beside its messages, a dict ``MISTAKES`` that maps an
identifier ``"<exercise>:<mistake>"`` (``"affine_backward:dW-averaged"``) to a phrase that appears in
the message of that mistake and of no other mistake of the same exercise. :func:`classify` turns the
reason a student lost a test cell's points into that identifier, so that a class's mistakes can be
counted (``course report``); a failure that no named mistake explains is ``"<exercise>:other"``.
"""

from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from pathlib import Path

import course.checks

NOT_DONE = "not-done"
OTHER = "other"
NOT_GRADED = "not-graded"


@lru_cache(maxsize=1)
def registry() -> dict[str, str]:
    """Every named mistake of the course: identifier -> phrase of its message.

    Read from the source of each ``course.checks`` module (its ``MISTAKES = {...}`` literal), without
    importing it where the dict is a literal: the grader and the report need the names, not PyTorch.
    """
    out: dict[str, str] = {}
    for path in sorted(Path(course.checks.__file__).parent.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MISTAKES" for t in node.targets):
                try:
                    named = ast.literal_eval(node.value)
                except ValueError:  # built by code (e.g. ``**helper()``): import the module after all
                    named = importlib.import_module(f"course.checks.{path.stem}").MISTAKES
                for key, phrase in named.items():
                    if key in out:
                        raise ValueError(f"mistake {key!r} is named twice (course/checks/{path.name})")
                    out[key] = phrase
    return out


def classify(exercise: str, reason: str) -> str:
    """The identifier of the mistake that ``reason`` (why a cell of ``exercise`` lost points) names.

    ``"<exercise>:not-done"`` for an exercise left as ``raise NotImplementedError()``,
    ``"<exercise>:not-graded"`` for a submission that could not be graded at all, and
    ``"<exercise>:other"`` when no named mistake's phrase is in the reason.
    """
    if reason.startswith("not done yet") or "is not implemented yet" in reason:
        return f"{exercise}:{NOT_DONE}"
    if reason.startswith("not graded"):
        return f"{exercise}:{NOT_GRADED}"
    prefix = f"{exercise}:"
    for key, phrase in registry().items():
        if key.startswith(prefix) and phrase in reason:
            return key
    return f"{exercise}:{OTHER}"


def is_named(mistake: str) -> bool:
    """True for a mistake that a hidden check names (not "not done", "not graded" or "other")."""
    return mistake.rsplit(":", 1)[-1] not in (NOT_DONE, OTHER, NOT_GRADED)
