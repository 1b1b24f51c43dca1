"""The JupyterHub classroom's pieces that need no browser: the root check, the student edition's stand-in, the
exchange's permissions tried as each student, and the student's view of the machine (course/hub.py).

The tests that create Unix users or run as them are skipped, with the reason, where the tests do not run as
root (or bubblewrap is missing). The whole cycle in browsers is tests/browser/test_classroom_cycle.py.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from course import hub
from tests.conftest import ROOT

A = "00_gradient_checking"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="creates Unix users and runs as them: needs root")
needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap (bwrap) is not installed")
PYTHON = str(hub.USER_PYTHON) if hub.USER_PYTHON.exists() else "/usr/bin/python3"


def test_classroom_refuses_to_start_without_root(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert hub.main(["up", "--state", "/nonexistent-classroom"]) == 2
    assert "run it as root" in capsys.readouterr().err
    assert not Path("/nonexistent-classroom").exists()


def test_the_classrooms_student_edition_is_the_staged_library(tmp_path):
    """The hub installs course.student_edition's package: at stage 00 every exercise name is a stub."""
    out = hub.build_student_edition(ROOT, "00", tmp_path / "edition")
    packages = hub.edition_packages(out)
    assert set(packages) == {"nnlab", "course"}
    gradcheck = (packages["nnlab"] / "gradcheck.py").read_text()
    assert "numerical_gradient = _exercise.stub('numerical_gradient')" in gradcheck
    assert "/ (2 * h)" in (ROOT / "lib" / "nnlab" / "gradcheck.py").read_text() and "/ (2 * h)" not in gradcheck
    assert not (packages["course"] / "checks").exists()
    assert not (packages["course"] / "mistakes.py").exists()
    assert not list(out.rglob("*.ipynb")), "no source/ notebooks in the student edition"


def _as(user: str, code: str) -> subprocess.CompletedProcess:
    """Python code run as a Unix user (no root left: setpriv drops the groups and the capabilities)."""
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env",
                           PYTHON, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The classroom's exchange in a state folder of its own, with ada's private submission in it."""
    if not IS_ROOT:
        pytest.skip("needs root")
    state = Path("/srv") / f"nn-classroom-unit-{os.getpid()}"
    layout = hub.Layout(state)
    try:
        state.mkdir(mode=0o755)
        hub.ensure_users()
        hub.ensure_exchange(layout)
        inbound = layout.exchange / hub.COURSE_ID / "inbound"
        # ada hands in as nbgrader's submit would, then PrivateSubmit's modes
        name = f"ada+{A}+2026-01-01 10:00:00.000000 UTC+abcdefghijkl"
        made = _as("ada", f"import os; d = {str(inbound / name)!r}; os.mkdir(d); "
                          f"open(os.path.join(d, '{A}.ipynb'), 'w').write('ada answers'); "
                          "os.chmod(os.path.join(d, '" + A + ".ipynb'), 0o600); os.chmod(d, 0o700)")
        assert made.returncode == 0, made.stderr
        yield layout, inbound / name
    finally:
        shutil.rmtree(state, ignore_errors=True)


@needs_root
def test_no_student_lists_reads_overwrites_or_removes_a_classmates_submission(exchange):
    layout, submission = exchange
    inbound = submission.parent
    tries = {
        "list inbound": f"import os; os.listdir({str(inbound)!r})",
        "read ada's notebook": f"open({str(submission / (A + '.ipynb'))!r}).read()",
        "overwrite ada's notebook": f"open({str(submission / (A + '.ipynb'))!r}, 'w').write('x')",
        "add a file to ada's folder": f"open({str(submission / 'extra.py')!r}, 'w').write('x')",
        "rename ada's folder": f"import os; os.rename({str(submission)!r}, {str(submission) + 'x'!r})",
        "remove ada's folder": f"import shutil; shutil.rmtree({str(submission)!r})",
        "list feedback": f"import os; os.listdir({str(layout.exchange / hub.COURSE_ID / 'feedback')!r})",
        "write feedback": f"open({str(layout.exchange / hub.COURSE_ID / 'feedback' / 'x.html')!r}, 'w')",
        "write a release": f"open({str(layout.exchange / hub.COURSE_ID / 'outbound' / 'x')!r}, 'w')",
        "replace the course folder": f"import os; os.rename({str(layout.exchange / hub.COURSE_ID)!r}, "
                                     f"{str(layout.exchange / 'mine')!r})",
    }
    for student in ("ben", "cleo"):
        for what, code in tries.items():
            result = _as(student, code)
            assert result.returncode != 0 and "PermissionError" in result.stderr, \
                f"{student} could {what}: {result.stdout}{result.stderr}"
    assert (submission / f"{A}.ipynb").read_text() == "ada answers"
    # ... and ada herself can, and anyone may hand in
    assert _as("ada", f"print(open({str(submission / (A + '.ipynb'))!r}).read())").stdout.strip() == "ada answers"
    handed = _as("ben", f"import os; os.mkdir({str(inbound / ('ben+' + A + '+2026-01-01 11:00:00.000000 UTC+x'))!r})")
    assert handed.returncode == 0, handed.stderr


@needs_root
def test_exchange_modes_are_what_nbgrader_release_accepts(exchange):
    layout, _ = exchange
    course = layout.exchange / hub.COURSE_ID
    teacher = pwd.getpwnam(hub.INSTRUCTOR).pw_uid
    assert layout.exchange.stat().st_mode & 0o7777 == 0o1777
    assert (course / "inbound").stat().st_mode & 0o7777 == 0o3733
    assert (course / "outbound").stat().st_mode & 0o7777 == 0o755
    assert (course / "feedback").stat().st_mode & 0o7777 == 0o711
    assert {(course / d).stat().st_uid for d in ("", "inbound", "outbound")} == {teacher}


@needs_root
@needs_bwrap
def test_a_students_view_holds_no_answers(exchange):
    """What a student's server sees (its very bubblewrap arguments): not the repository, its venv, /root, /work
    or a classmate's home; the exchange and their own home, yes."""
    layout, submission = exchange
    layout.student_env.mkdir(parents=True, exist_ok=True)
    home = pwd.getpwnam("ada").pw_dir
    targets = {"repository": ROOT / "lib" / "nnlab" / "gradcheck.py", "the course's venv": ROOT / ".venv",
               "/root": Path("/root"), "/work": Path("/work"), "ben's home": Path(pwd.getpwnam("ben").pw_dir),
               "the hub's state": layout.hub, "own home": Path(home), "own submission": submission}
    code = "import os, json, sys; print(json.dumps({k: os.path.exists(p) for k, p in json.loads(sys.argv[1]).items()}))"
    proc = subprocess.run(["setpriv", "--reuid=ada", "--regid=ada", "--init-groups", "--reset-env",
                           *hub.student_view(layout, home), PYTHON, "-c", code,
                           json.dumps({k: str(v) for k, v in targets.items()})],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen.pop("own home") and seen.pop("own submission"), seen
    assert not any(seen.values()), f"visible in a student's server: {[k for k, v in seen.items() if v]}"


@needs_root
def test_owner_only_feedback_is_readable_by_its_student_alone(tmp_path):
    """`course release-feedback --owner-only`: ada's feedback file is ada's, 0600; a classmate who learns its name
    gets PermissionError (nbgrader's own is 0644, hidden by its name only); an id with no Unix user is set aside."""
    from nbgrader.utils import notebook_hash

    from course import ingest

    hub.ensure_users()
    root, exchange = tmp_path / "course", Path("/srv") / f"nn-feedback-test-{os.getpid()}"
    secret = "ab" * 32
    for sid in ("ada", "nobody_has_this_name"):
        folder = root / "feedback" / sid / A
        folder.mkdir(parents=True)
        (folder / "submission_secret.txt").write_text(secret)
        (folder / f"{A}.html").write_text(f"<title>{sid} (Score: 18.0 / 18.0)</title>")
    try:
        exchange.mkdir(mode=0o755)
        intake = ingest.release_feedback(root, A, exchange, hub.COURSE_ID, owner_only=True)
        assert intake.students == ["ada"] and "no Unix user" in intake.set_aside["nobody_has_this_name"]
        page = exchange / hub.COURSE_ID / "feedback" / f"{notebook_hash(secret=secret, notebook_id=A)}.html"
        assert page.stat().st_uid == pwd.getpwnam("ada").pw_uid and page.stat().st_mode & 0o777 == 0o600
        assert "ada (Score" in _as("ada", f"print(open({str(page)!r}).read())").stdout
        assert "PermissionError" in _as("ben", f"open({str(page)!r}).read()").stderr
    finally:
        shutil.rmtree(exchange, ignore_errors=True)
