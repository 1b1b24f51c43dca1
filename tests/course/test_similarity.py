"""The copy detector (course.similarity) is evidence: it flags no correct answer written independently, and
it flags real copies of the library's reference (renamed variables, reordered independent statements,
added comments, a changed docstring) wherever it claims to see them.

The rates: ``.venv/bin/python -m tests.course.test_similarity`` prints them.

Independent answers: every correct alternative of every mistake catalog (tests/course/catalogs/), and
fresh ones for the longest exercises (tests/course/similarity_corpus.py). Copies: made from every
exercise's reference, three ways: *lazy* (variables renamed, the rest kept), *pasted* (the reference's text with its variables renamed, two
independent statements swapped, comments added, the docstring replaced) and *scrubbed* (the same,
and the reference's comments and long strings removed, the code re-printed from its syntax tree).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import textwrap
import tokenize

import pytest

from course.similarity import MIN_STATEMENTS, _body_statements, _names, copy_evidence, reference_source
from tests.course.similarity_corpus import FRESH
from tests.conftest import ROOT
from tests.course.test_mistake_catalogs import CATALOGS


def demo_honest_student() -> dict[str, str]:
    """The answers of ``ada``, the demo class's honest student (examples/class_00/make_class.py)."""
    spec = importlib.util.spec_from_file_location("make_class", ROOT / "examples" / "class_00" / "make_class.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ADA


def independent_answers() -> list[tuple[str, str, str]]:
    """(origin, exercise, code) of every correct answer written without the reference."""
    answers = [("fresh", name, code) for exercise, code in FRESH for name in exercise.split("+")]
    answers += [("demo ada", name, code) for name, code in demo_honest_student().items()]
    for catalog in CATALOGS:
        for exercise, code in catalog.CORRECT:
            answers += [(f"catalog {catalog.NOTEBOOK[:2]}", name, code) for name in exercise.split("+")]
    return [a for a in answers if reference_source(a[1])]


def exercises_with_references() -> list[str]:
    names = [name for catalog in CATALOGS for name in catalog.EXERCISES]
    return [n for n in dict.fromkeys(names) if reference_source(n)]


# ---------------------------------------------------------------------------- making copies

def _rename_locals(source: str) -> str:
    tree = ast.parse(source)
    args = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
            for a in [*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg] if a}
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    new = {name: f"my_{name.lower()}_{i}" for i, name in enumerate(sorted(stored - args))}
    lines = source.split("\n")
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for k in reversed(range(len(tokens))):
        tok = tokens[k]
        after_dot = k > 0 and tokens[k - 1].string == "."
        if tok.type == tokenize.NAME and tok.string in new and not after_dot:
            (row, col), (_, end) = tok.start, tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new[tok.string] + line[end:]
    return "\n".join(lines)


def _swap_two_independent_statements(source: str) -> str:
    tree = ast.parse(source)
    lines = source.split("\n")
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If)) or not body:
            continue
        for a, b in zip(body, body[1:]):
            single = all(s.lineno == s.end_lineno and not isinstance(s, (ast.Expr, ast.Return)) for s in (a, b))
            (ra, wa), (rb, wb) = _names(a), _names(b)
            if single and not (wa & (rb | wb)) and not (wb & ra) and ast.dump(a) != ast.dump(b):
                lines[a.lineno - 1], lines[b.lineno - 1] = lines[b.lineno - 1], lines[a.lineno - 1]
                return "\n".join(lines)
    return source


def _replace_docstrings(source: str) -> str:
    tree = ast.parse(source)
    lines = source.split("\n")
    docs = [n.body[0] for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
            and isinstance(n.body[0].value.value, str)]
    for doc in sorted(docs, key=lambda d: -d.lineno):
        indent = lines[doc.lineno - 1][: doc.col_offset]
        lines[doc.lineno - 1: doc.end_lineno] = [indent + '"""My own implementation of the exercise."""']
    return "\n".join(lines)


def _add_comments(source: str) -> str:
    tree = ast.parse(source)
    lines = source.split("\n")
    firsts = [n.body[0] for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.body]
    for stmt in sorted(firsts, key=lambda s: -s.lineno):
        indent = lines[stmt.lineno - 1][: stmt.col_offset]
        lines.insert(stmt.lineno - 1, indent + "# worked this out step by step")
    return "\n".join(lines)


class _DropLongStrings(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and len(node.value.split()) >= 3:
            node.value = "bad input"
        return node


def lazy_copy(name: str) -> str:
    """The reference pasted in with its variables renamed: its docstring and comments kept."""
    return _rename_locals(textwrap.dedent(reference_source(name)))


def pasted_copy(name: str) -> str:
    source = textwrap.dedent(reference_source(name))
    return _add_comments(_replace_docstrings(_swap_two_independent_statements(_rename_locals(source))))


def scrubbed_copy(name: str) -> str:
    tree = _DropLongStrings().visit(ast.parse(pasted_copy(name)))
    return _add_comments(ast.unparse(tree))


def test_the_copies_are_disguised_and_still_the_reference():
    # The disguises are real: the text changed, the syntax tree (names aside) did not lose a statement.
    name = "numerical_gradient_array"
    ref, pasted, scrubbed = textwrap.dedent(reference_source(name)), pasted_copy(name), scrubbed_copy(name)
    assert "my_grad_" in pasted and "My own implementation" in pasted and "# worked this out" in pasted
    assert pasted != ref and "grad = np.zeros_like" not in pasted
    assert _body_statements(pasted) == _body_statements(ref) == _body_statements(scrubbed)
    assert "Central-difference" not in scrubbed


# ---------------------------------------------------------------------------- the rates

def rates() -> dict[str, tuple[int, int]]:
    """(hits, total) of each measurement."""
    independent = independent_answers()
    flagged = [(o, n) for o, n, code in independent if copy_evidence(n, code)]
    names = exercises_with_references()
    long_names = [n for n in names if _body_statements(reference_source(n)) >= MIN_STATEMENTS]
    lazy = [n for n in names if copy_evidence(n, lazy_copy(n))]
    pasted = [n for n in names if copy_evidence(n, pasted_copy(n))]
    scrubbed = [n for n in names if copy_evidence(n, scrubbed_copy(n))]
    return {
        "independent correct answers flagged": (len(flagged), len(independent)),
        "lazy copies flagged (renamed only; all exercises)": (len(lazy), len(names)),
        "pasted copies flagged (all exercises)": (len(pasted), len(names)),
        "scrubbed copies flagged (all exercises)": (len(scrubbed), len(names)),
        f"pasted copies flagged (references of >= {MIN_STATEMENTS} statements)":
            (len(set(pasted) & set(long_names)), len(long_names)),
        f"scrubbed copies flagged (references of >= {MIN_STATEMENTS} statements)":
            (len(set(scrubbed) & set(long_names)), len(long_names)),
    }


@pytest.mark.parametrize("origin, name, code", independent_answers(),
                         ids=[f"{o}-{n}-{i}" for i, (o, n, _) in enumerate(independent_answers())])
def test_no_correct_answer_written_independently_is_flagged(origin, name, code):
    assert copy_evidence(name, code) == ""


@pytest.mark.parametrize("name", [n for n in exercises_with_references()
                                  if _body_statements(reference_source(n)) >= MIN_STATEMENTS])
def test_copies_of_a_long_reference_are_flagged_however_disguised(name):
    assert copy_evidence(name, pasted_copy(name))
    assert copy_evidence(name, scrubbed_copy(name))


def test_a_pasted_copy_that_keeps_the_references_own_comment_is_flagged_even_when_short():
    reference = '''def affine_forward(x, W, b):
    """x (N, D), W (D, M), b (M,) -> out (N, M), cache."""
    out = x @ W + b  # broadcasting adds the bias row to every sample of the batch
    return out, (x, W, b)'''
    copy = '''def affine_forward(x, W, b):
    """x: (N, D), W: (D, M), b: (M,) -> out: (N, M), cache."""
    res = x @ W + b   # Broadcasting adds the bias row to every sample of the batch.
    return res, (x, W, b)'''
    honest = '''def affine_forward(x, W, b):
    """x: (N, D), W: (D, M), b: (M,) -> out: (N, M), cache."""
    out = x @ W + b
    return out, (x, W, b)'''
    assert "broadcasting adds the bias row" in copy_evidence("affine_forward", copy, reference, given="")
    assert copy_evidence("affine_forward", honest, reference, given="") == ""
    # the same line given to every student in the notebook is no evidence
    given = "# broadcasting adds the bias row to every sample of the batch"
    assert copy_evidence("affine_forward", copy, reference, given=given) == ""


def test_the_rates():
    measured = rates()
    assert measured["independent correct answers flagged"][0] == 0
    long_pasted = [v for k, v in measured.items() if k.startswith("pasted copies flagged (references")][0]
    long_scrubbed = [v for k, v in measured.items() if k.startswith("scrubbed copies flagged (references")][0]
    assert long_pasted[0] == long_pasted[1] and long_scrubbed[0] == long_scrubbed[1]


def main() -> None:
    for what, (hits, total) in rates().items():
        print(f"{what:<62} {hits:>3} / {total:<3} = {hits / total if total else 0:6.1%}")


if __name__ == "__main__":
    main()
