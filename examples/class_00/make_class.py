"""Regenerate the bundled example class for notebook 00 from the current release.

Run after changing source/00_gradient_checking and rebuilding the release:
    python examples/class_00/make_class.py
Each fictional student gets submitted-layout notebook <student>/00_gradient_checking/00_gradient_checking.ipynb.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import nbformat

from nnlab import gradcheck, layers

from course.notebooks import grade_id, is_solution, reference_answers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ASSIGNMENT = "00_gradient_checking"

# A typical bug: the loss is summed over the batch instead of averaged (and so is its gradient).
SUMMED_LOSS = '''def softmax_cross_entropy(scores, y):
    """scores: (N, C), y: (N,) int -> loss (float), dscores: (N, C)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(len(y)), y]).sum()
    dscores = probs.copy()
    dscores[np.arange(len(y)), y] -= 1
    return loss, dscores'''

# Another: relative_error without the both-zero case (nan and a warning for two zero arrays).
NO_ZERO_CASE = '''def relative_error(a, b):
    """||a - b|| / (||a|| + ||b||), or 0.0 when both are zero."""
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))'''

# ada's own answers, written without the library: complete and correct, and nothing like a copy.
ADA = {
    "numerical_gradient": '''def numerical_gradient(f, x, h=1e-5):
    """Central-difference gradient of a scalar function f at x (any shape); x is restored."""
    grad = np.zeros(x.shape, dtype=x.dtype)
    for idx in np.ndindex(*x.shape):
        keep = x[idx]
        x[idx] = keep + h
        up = f(x)
        x[idx] = keep - h
        down = f(x)
        x[idx] = keep
        grad[idx] = (up - down) / (2 * h)
    return grad''',
    "numerical_gradient_array": '''def numerical_gradient_array(f, x, dout, h=1e-5):
    """Central-difference gradient of sum(f(x) * dout) with respect to x; x is restored."""
    g = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), g.reshape(-1)  # views: writing flat_x writes x
    for k in range(flat_x.size):
        v = flat_x[k]
        flat_x[k] = v + h
        hi = f(x).copy()
        flat_x[k] = v - h
        lo = f(x).copy()
        flat_x[k] = v
        flat_g[k] = ((hi - lo) * dout).sum() / (2 * h)
    return g''',
    "relative_error": '''def relative_error(a, b):
    """||a - b|| / (||a|| + ||b||), or 0.0 when both are zero."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)''',
    "affine_forward": '''def affine_forward(x, W, b):
    """x: (N, D), W: (D, M), b: (M,) -> out: (N, M), cache."""
    return x @ W + b, (x, W, b)''',
    "affine_backward": '''def affine_backward(dout, cache):
    """dout: (N, M) -> dx: (N, D), dW: (D, M), db: (M,)."""
    x, W, _ = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)''',
    "softmax_cross_entropy": '''def softmax_cross_entropy(scores, y):
    """scores: (N, C), y: (N,) int -> loss (float), dscores: (N, C)."""
    N = scores.shape[0]
    z = scores - np.max(scores, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    loss = -np.mean(log_p[np.arange(N), y])
    grad = np.exp(log_p)
    grad[np.arange(N), y] -= 1
    return float(loss), grad / N''',
}


def pasted_from_the_library(function) -> str:
    """What a copier hands in: the library's function pasted in, type hints dropped, a few names changed."""
    source = inspect.getsource(function)
    params = inspect.signature(function).parameters.values()
    plain = ", ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}" for p in params)
    body = source[source.index('"""'):]
    for old, new in [("grad", "g"), ("dscores", "d_scores"), ("log_probs", "logp"), ("shifted", "s")]:
        body = re.sub(rf"\b{old}\b", new, body)
    return f"def {function.__name__}({plain}):\n    " + body.rstrip()


STUDENTS = {
    "ada": {"done": "all", "override": ADA},  # complete and correct, her own code
    "ben": {"done": ["numerical_gradient", "relative_error", "affine_forward"]},  # partly done
    "cleo": {"done": []},  # the untouched release
    "dev": {"done": "all", "override": {"softmax_cross_entropy": SUMMED_LOSS, "relative_error": NO_ZERO_CASE}},
    # complete and correct, but two answers are the library's functions pasted in (flagged for review)
    "finn": {"done": "all", "override": {
        "numerical_gradient_array": pasted_from_the_library(gradcheck.numerical_gradient_array),
        "softmax_cross_entropy": pasted_from_the_library(layers.softmax_cross_entropy)}},
}


def solutions() -> dict[str, str]:
    src = nbformat.read(ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return reference_answers(src)


def main() -> None:
    release = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    answers = solutions()
    for student, plan in STUDENTS.items():
        nb = nbformat.read(release, as_version=4)
        done = answers if plan["done"] == "all" else {k: answers[k] for k in plan["done"]}
        done = {**done, **plan.get("override", {})}
        for cell in nb.cells:
            if is_solution(cell) and grade_id(cell) in done:
                cell.source = done[grade_id(cell)]
        out = HERE / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    # A notebook whose JSON was cut off (an interrupted upload).
    broken = HERE / "eve" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text(release.read_text()[:1500])
    print(f"wrote {len(STUDENTS) + 1} submissions under {HERE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
