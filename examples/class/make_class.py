"""Regenerate the bundled example class: 30 fictional students, notebooks 00 and 08, from the mistake catalogs.

    .venv/bin/python examples/class/make_class.py

Each student's answers are drawn (seeded, so the class is the same on every run) from the reference solution,
the correct alternatives and the known mistakes of tests/course/catalogs/, or left undone. The five students of
examples/class_00 (ada complete, ben half done, cleo the untouched release, dev two mistakes, eve a broken
file) are part of the class for notebook 00. ``expected.json`` records, per assignment, which named mistake
(course.checks' MISTAKES identifier) each student was given and who left which exercise undone: the class
report must count exactly these (tests/course/test_report.py).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))  # the catalogs live in tests/

from course.mistakes import registry  # noqa: E402
from course.notebooks import grade_id, is_solution, reference_answers  # noqa: E402

ASSIGNMENTS = {"00_gradient_checking": "00", "08_training_practice": "08"}
NAMES = ["amir_k", "bea.lopez", "chen_wei", "dara@uni.edu", "emil_s", "fatima_z", "gus.holm", "hana_m", "ivo_p",
         "jane_doe", "kofi_a", "lena.v", "mateo_r", "nina_b", "omar_f", "pia.k", "quinn_t", "rosa_l", "sami_j",
         "tomas_e", "uma_d", "vik_n", "wen_x", "yara_o", "zoe_c"]
# examples/class_00, copied: ada, ben, cleo, dev, eve and finn (who pasted in the library's functions)
FIXED_00 = sorted(p.name for p in (ROOT / "examples" / "class_00").iterdir() if p.is_dir() and p.name != "__pycache__")
# What they were given (eve's file is broken: she is not graded, so she has no mistakes to count).
EXERCISES_00 = ["numerical_gradient", "numerical_gradient_array", "relative_error", "affine_forward", "affine_backward",
                "softmax_cross_entropy"]
GIVEN_00 = {"ben": {e: f"{e}:not-done" for e in EXERCISES_00
                    if e not in ("numerical_gradient", "relative_error", "affine_forward")},
            "cleo": {e: f"{e}:not-done" for e in EXERCISES_00},
            "dev": {"softmax_cross_entropy": "softmax_cross_entropy:summed-loss",
                    "relative_error": "relative_error:no-zero-case"}}
# (probability of) each exercise being: the reference, a correct alternative, a known mistake, left undone
P_ANSWER = {"reference": 0.35, "alternative": 0.25, "mistake": 0.3, "undone": 0.1}


def solutions(assignment: str) -> dict[str, str]:
    src = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return reference_answers(src)


def mistake_id(exercise: str, phrase: str) -> str:
    keys = [k for k, p in registry().items() if p == phrase and k.split(":")[0] == exercise]
    if len(keys) != 1:
        raise ValueError(f"no single named mistake of {exercise} has the phrase {phrase!r}: {keys}")
    return keys[0]


def draw_answers(catalog, rng: np.random.Generator) -> tuple[dict[str, str], dict[str, str]]:
    """Answers for every exercise, and the named mistakes (exercise -> identifier or "not-done") among them."""
    reference = solutions(catalog.NOTEBOOK)
    # An exercise whose mistakes spill into other exercises' tests is always done right: the counts stay exact.
    always_right = set(getattr(catalog, "SPILLOVER", {}))
    answers, given = {}, {}
    for exercise in catalog.EXERCISES:
        mistakes = [m for m in catalog.MISTAKES if m[0] == exercise]
        alternatives = [a for a in catalog.CORRECT if a[0] == exercise]
        kinds = [k for k in P_ANSWER if (k != "mistake" or mistakes) and (k != "alternative" or alternatives)
                 and not (exercise in always_right and k in ("mistake", "undone"))]
        p = np.array([P_ANSWER[k] for k in kinds])
        kind = kinds[rng.choice(len(kinds), p=p / p.sum())]
        if kind == "reference":
            answers[exercise] = reference[exercise]
        elif kind == "alternative":
            answers[exercise] = alternatives[rng.integers(len(alternatives))][1]
        elif kind == "mistake":
            _, label, code, phrase = mistakes[rng.integers(len(mistakes))]
            answers[exercise] = code
            given[exercise] = mistake_id(exercise, phrase)
        else:
            given[exercise] = f"{exercise}:not-done"
    return answers, given


def write_submission(assignment: str, student: str, answers: dict[str, str]) -> None:
    nb = nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)].strip("\n")
    out = HERE / student / assignment / f"{assignment}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    expected: dict[str, dict[str, list[str]]] = {}
    for assignment, nn in ASSIGNMENTS.items():
        catalog = importlib.import_module(f"tests.course.catalogs.catalog_{nn}")
        rng = np.random.default_rng(int(nn) + 2026)
        counts: dict[str, list[str]] = {}
        for student in NAMES:
            answers, given = draw_answers(catalog, rng)
            write_submission(assignment, student, answers)
            for key in given.values():
                counts.setdefault(key, []).append(student)
        if assignment == "00_gradient_checking":
            for student, given in GIVEN_00.items():
                for key in given.values():
                    counts.setdefault(key, []).append(student)
        expected[assignment] = {k: sorted(v) for k, v in sorted(counts.items())}
    for student in FIXED_00:
        shutil.copytree(ROOT / "examples" / "class_00" / student, HERE / student)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(NAMES)} students x {len(ASSIGNMENTS)} notebooks and {len(FIXED_00)} from class_00 under "
          f"{HERE.relative_to(ROOT)}; the named mistakes they were given: {(HERE / 'expected.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
