"""%check (course.magic): which notebook, unsaved changes, and the report of course check in the notebook."""

import nbformat

from course import magic


def notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / "00_gradient_checking.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_notebook_comes_from_jupyterlabs_session(tmp_path, monkeypatch):
    path = notebook(tmp_path, "x = 1")
    monkeypatch.chdir(tmp_path)  # the kernel runs in the notebook's folder
    assert magic.notebook_path({"__session__": "release/00_gradient_checking/00_gradient_checking.ipynb"}) == path
    assert magic.notebook_path({"__session__": str(path)}) == path
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert magic.notebook_path({}) is None


def test_code_run_but_not_saved_is_an_unsaved_change(tmp_path):
    path = notebook(tmp_path, "import numpy as np", "def relu(x):\n    return np.maximum(x, 0)")
    assert magic.unsaved_cells(path, ["import numpy as np", "def relu(x):\n    return np.maximum(x, 0)  ", "%check"]) == []
    edited = "def relu(x):\n    return np.maximum(x, 1)"
    assert magic.unsaved_cells(path, ["import numpy as np", edited]) == [edited]


def test_check_without_a_notebook_says_how_to_name_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert magic.check("", {}) == 2
    assert "%check path/to/notebook.ipynb" in capsys.readouterr().out
    assert magic.check(str(tmp_path / "missing.ipynb"), {}) == 2
    assert "does not exist" in capsys.readouterr().out


def test_loading_the_magic_keeps_the_kernels_start_light():
    """Every notebook's first cell loads it, in the student's kernel and the grader's: it must not import
    nbformat (jsonschema's format checkers cost a second of every kernel's start) until %check runs."""
    import subprocess
    import sys

    code = "import sys, course.magic; print(sorted(m for m in ('nbformat', 'jsonschema') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_in_the_student_edition_without_a_service_says_what_is_missing(tmp_path, monkeypatch, capsys):
    """The student edition has no course.cli: without COURSE_CHECK_URL, %check must say so, not print nothing."""
    path = notebook(tmp_path, "x = 1")
    monkeypatch.delenv("COURSE_CHECK_URL", raising=False)
    real = magic.importlib.util.find_spec
    monkeypatch.setattr(magic.importlib.util, "find_spec", lambda name, *a: None if name == "course.cli" else real(name, *a))
    assert magic.check(str(path), {}) == 2
    out = capsys.readouterr().out
    assert "no check service is set (COURSE_CHECK_URL)" in out and "Ask your instructor" in out
