"""Regenerate the bundled example class for notebook 00 from the current release.

Run after changing source/00_gradient_checking and rebuilding the release:
    python examples/class_00/make_class.py
Each fictional student gets submitted-layout notebook <student>/00_gradient_checking/00_gradient_checking.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from course.notebooks import BEGIN_SOLUTION, END_SOLUTION, grade_id, is_solution, strip_markers

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

STUDENTS = {
    "ada": {"done": "all"},  # complete and correct
    "ben": {"done": ["numerical_gradient", "relative_error", "affine_forward"]},  # partly done
    "cleo": {"done": []},  # the untouched release
    "dev": {"done": "all", "override": {"softmax_cross_entropy": SUMMED_LOSS, "relative_error": NO_ZERO_CASE}},
}


def solutions() -> dict[str, str]:
    src = nbformat.read(ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return {grade_id(c): strip_markers(c.source, BEGIN_SOLUTION, END_SOLUTION) for c in src.cells if is_solution(c)}


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
