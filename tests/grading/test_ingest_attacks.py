"""The ingest gate (course.ingest) under attack: every route in (folder, LMS zip, exchange) with links, FIFOs,
hard links, mode bits, hostile names, zip bombs, ids that are not ids, and students who hand in as a classmate.

Each attack must leave the course untouched, put nothing the attacker does not own into ``submitted/``, and cost
only the attacker: honest classmates are collected whole. The canary is a root-only file outside the course; its
contents must never appear in anything the gate writes. A graded class through the exchange (real Unix users,
owners checked) closes the file: the impersonation, the link and the missing secret change no honest grade, and
``course release-feedback`` hands everyone else their feedback.
"""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from course import ingest
from course.classroom import COURSE_ID, Classroom, feedback_score
from course.spreadsheet import neutralize, safe_cell
from tests.grading.conftest import digest

A = "00_gradient_checking"
NB = f"{A}.ipynb"
ROOT_ONLY = os.geteuid() == 0
CANARY_TEXT = "CANARY-7f3a9c-root-only"


@pytest.fixture
def canary(tmp_path_factory) -> Path:
    """A root-only file outside the course (mode 0600), standing for /etc/shadow or the instructor's keys."""
    folder = tmp_path_factory.mktemp("private")
    path = folder / "secret.txt"
    path.write_text(CANARY_TEXT)
    path.chmod(0o600)
    return path


def honest_notebook(root: Path, sid: str = "ada") -> bytes:
    return (root / "examples" / "class_00" / sid / A / NB).read_bytes()


def all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink())


def assert_clean(folder: Path) -> None:
    """Nothing under ``folder`` is a link, a special file, or carries an execute, setuid or setgid bit."""
    for path in folder.rglob("*"):
        info = os.lstat(path)
        assert not stat.S_ISLNK(info.st_mode), path
        if stat.S_ISREG(info.st_mode):
            assert stat.S_IMODE(info.st_mode) & 0o7111 == 0, (path, oct(info.st_mode))
            assert info.st_nlink == 1, path
        else:
            assert stat.S_ISDIR(info.st_mode), path


# -- ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sid", ["jane_doe", "jdoe@uni.edu", "s1234567", "jörg_müller", "a" * ingest.MAX_ID_CHARS])
def test_real_ids_pass_the_rule(sid):
    assert ingest.check_id(sid) == ""


@pytest.mark.parametrize("sid", ["=2*3", "+1", "@SUM(A1)", "-rf", ".hidden", "a" * (ingest.MAX_ID_CHARS + 1),
                                 "a" * 90, "<img src=x onerror=alert(1)>", "x\ny", "jo\u0308rg", "ä" * 60 + "日本語漢字",
                                 "", "a/b", "a+b"])
def test_ids_that_would_break_something_downstream_are_refused(sid):
    assert ingest.check_id(sid), sid


def test_a_roster_admits_only_its_students(tmp_path):
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("id,first_name,last_name,email\nada,Ada,L,a@x\nben,Ben,B,b@x\n")
    roster = ingest.load_roster(roster_file)
    assert roster == {"ada", "ben"}
    assert ingest.check_id("ada", roster) == "" and ingest.check_id("mallory", roster) == "not on the class roster"
    (tmp_path / "bad.txt").write_text("ada\n=2*3\n")
    with pytest.raises(ValueError, match="break the rule"):
        ingest.load_roster(tmp_path / "bad.txt")


# -- the folder route --------------------------------------------------------------------------

def test_folder_route_follows_no_link_and_keeps_no_mode_bit(scratch_course, canary, tmp_path):
    root = scratch_course
    folder = tmp_path / "class"
    (folder / "ada" / A).mkdir(parents=True)
    (folder / "ada" / A / NB).write_bytes(honest_notebook(root))
    (folder / "mallory" / A).mkdir(parents=True)
    m = folder / "mallory" / A
    m_nb = m / NB
    m_nb.write_bytes(honest_notebook(root, "dev"))
    (m / "shadow.txt").symlink_to(canary)                      # a link to a root-only file
    (m / "course_source").symlink_to(root / "source")          # a link to the instructor's solutions
    os.link(canary, m / "hard.txt")                            # a hard link: a second name of the canary
    os.mkfifo(m / "pipe")                                      # a FIFO: opening it would block the batch
    (m / "suid").write_bytes(b"\x7fELF fake")
    os.chmod(m / "suid", 0o4755)                               # a setuid "binary"
    (folder / "trudy").symlink_to(root / "source")             # a whole student folder that is a link
    (folder / "victor" / A).parent.mkdir(parents=True)
    (folder / "victor" / A).symlink_to(canary.parent)          # the assignment folder is a link
    course_before = digest(root / "source")

    intake = ingest.collect_folder(root, A, folder)

    assert intake.students == ["ada", "mallory"]
    assert set(intake.set_aside) == {"trudy", "victor"}
    assert "link" in intake.set_aside["trudy"] and "link" in intake.set_aside["victor"]
    assert sorted(p.name for p in (root / "submitted" / "mallory" / A).iterdir()) == [NB, "suid"]
    assert len(intake.left_out["mallory"]) == 4, intake.left_out
    assert (root / "submitted" / "ada" / A / NB).read_bytes() == honest_notebook(root)
    assert CANARY_TEXT.encode() not in all_bytes(root / "submitted")
    assert not (root / "submitted" / "trudy").exists() and not (root / "submitted" / "victor").exists()
    assert_clean(root / "submitted")
    assert digest(root / "source") == course_before


def test_a_folder_of_submissions_that_is_a_link_is_refused(scratch_course, tmp_path):
    (tmp_path / "link").symlink_to(scratch_course / "examples" / "class_00")
    with pytest.raises(FileNotFoundError, match="link"):
        ingest.collect_folder(scratch_course, A, tmp_path / "link")


# -- the zip route -----------------------------------------------------------------------------

def zip_entry(zf: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o100644) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def student_zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            zip_entry(zf, name, data, mode)
    return buf.getvalue()


def test_zip_route_attacks(scratch_course, tmp_path):
    root = scratch_course
    good = honest_notebook(root)
    lms = tmp_path / "lms.zip"
    with zipfile.ZipFile(lms, "w") as zf:
        zip_entry(zf, f"ada_{NB}", good)
        zip_entry(zf, f"ben_{NB}", honest_notebook(root, "ben"), mode=0o600)  # no file type: Windows tools
        # mallory's own zip: a setuid binary, a link, a path out of her folder, a classmate's and a ghost's names
        zip_entry(zf, f"mallory_{A}.zip", student_zip([
            (NB, honest_notebook(root, "dev"), 0o100644),
            ("tool", b"\x7fELF", 0o104755),
            ("shadow", b"/etc/shadow", 0o120777),
            ("../../../../escape.txt", b"out", 0o100644),
            (f"ben_{NB}", b"{}", 0o100644),
            (f"ghost_{NB}", good, 0o100644),
            ("nested.zip", student_zip([(NB, good, 0o100644)]), 0o100644),
        ]))
        zip_entry(zf, f"../../evil_{NB}", b"{}")                  # the LMS zip itself naming a path out
        zip_entry(zf, f"linker_{NB}", b"/etc/passwd", 0o120777)   # a link entry in the LMS zip
    course_before = digest(root / "source")

    intake = ingest.collect_zip(root, A, lms)

    assert intake.students == ["ada", "ben", "mallory"]
    sub = root / "submitted"
    assert sorted(p.name for p in sub.iterdir()) == ["ada", "ben", "mallory"]   # no ghost, no evil, no linker
    assert (sub / "ada" / A / NB).read_bytes() == good
    assert (sub / "ben" / A / NB).read_bytes() == honest_notebook(root, "ben")  # untouched by mallory's upload
    assert sorted(p.name for p in (sub / "mallory" / A).iterdir()) == [NB, f"ben_{NB}", f"ghost_{NB}", "tool"]
    assert not (tmp_path / "escape.txt").exists() and not (root / "escape.txt").exists()
    assert not list(root.rglob("escape.txt")) and not list(tmp_path.rglob("evil*"))
    assert_clean(sub)
    assert digest(root / "source") == course_before
    assert any("link" in why for why in intake.left_out["mallory"])
    assert any("archive inside an archive" in why for why in intake.left_out["mallory"])


@pytest.mark.serial  # streams a gigabyte and a half through the reader
def test_a_zip_bomb_costs_only_the_caps(scratch_course, tmp_path):
    root = scratch_course
    bomb = tmp_path / "bomb.zip"
    zeros = bytes(16 * 1024 ** 2)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zip_entry(zf, f"ada_{NB}", honest_notebook(root))
        info = zipfile.ZipInfo(f"mallory_{NB}")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as out:
            for _ in range(96):  # 1.5 GiB of zeros, about 1.5 MB compressed
                out.write(zeros)
    assert bomb.stat().st_size < 20 * 1024 ** 2
    intake = ingest.collect_zip(root, A, bomb)
    assert intake.students == ["ada"]
    assert "unpacks to more than 32 MiB" in " ".join(intake.left_out.get("mallory", [])), intake
    used = sum(p.stat().st_size for p in (root / "submitted").rglob("*") if p.is_file())
    assert used < 2 * 1024 ** 2


# -- the exchange route ------------------------------------------------------------------------

USERS = ("ingest_ada", "ingest_ben", "ingest_mallory")


@pytest.fixture(scope="module")
def unix_users():
    """Real Unix users for the students (created for this module, removed after)."""
    if not ROOT_ONLY or not shutil.which("useradd"):
        pytest.skip("needs root and useradd: the exchange's owner check is about real Unix users")
    made = []
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
            made.append(name)
    yield {name: pwd.getpwnam(name).pw_uid for name in USERS}
    for name in made:
        subprocess.run(["userdel", name], capture_output=True)


def inbound_submission(inbound: Path, sid: str, stamp: str, notebook: bytes, owner: int | None,
                       secret: bool = True, extra: dict[str, object] | None = None) -> Path:
    """What ``nbgrader submit`` leaves in the inbound folder, owned by ``owner``."""
    folder = inbound / f"{sid}+{A}+{stamp}+r{abs(hash(stamp)) % 10 ** 6}"
    folder.mkdir(parents=True)
    (folder / NB).write_bytes(notebook)
    (folder / "timestamp.txt").write_text(stamp)
    if secret:
        (folder / "submission_secret.txt").write_text(hashlib.sha512(folder.name.encode()).hexdigest())
    for name, target in (extra or {}).items():
        (folder / name).symlink_to(target)
    if owner is not None:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, owner, owner, follow_symlinks=False)
    return folder


@pytest.mark.serial  # creates Unix users
def test_exchange_route_attacks(scratch_course, canary, tmp_path, unix_users):
    root = scratch_course
    exchange = tmp_path / "exchange"
    inbound = ingest.exchange_inbound(exchange, COURSE_ID)
    inbound.mkdir(parents=True)
    ada, ben, mallory = (unix_users[u] for u in USERS)
    mine = honest_notebook(root)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 10:00:00.000000 UTC", mine, ada)
    # mallory, newer, under ada's name: her folder, her notebook (the untouched release)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 11:00:00.000000 UTC", honest_notebook(root, "cleo"),
                       mallory)
    # mallory's own: a link to the canary and to the instructor's source, in her own folder
    inbound_submission(inbound, "ingest_mallory", "2026-12-01 10:30:00.000000 UTC", honest_notebook(root, "dev"),
                       mallory, extra={"shadow.txt": canary, "solutions": root / "source"})
    # ben's newest has no submission secret (not made by nbgrader submit): his older whole one counts
    inbound_submission(inbound, "ingest_ben", "2026-12-01 09:00:00.000000 UTC", honest_notebook(root, "ben"), ben)
    inbound_submission(inbound, "ingest_ben", "2026-12-01 12:00:00.000000 UTC", b"{}", ben, secret=False)
    # a folder that is a link, and an id that is not one
    (inbound / f"ingest_mallory+{A}+2026-12-01 13:00:00.000000 UTC+x").symlink_to(canary.parent)
    inbound_submission(inbound, "=2*3", "2026-12-01 10:00:00.000000 UTC", mine, mallory)

    intake = ingest.collect_exchange(root, A, exchange, COURSE_ID)

    assert intake.students == ["ingest_ada", "ingest_ben", "ingest_mallory"]
    sub = root / "submitted"
    assert (sub / "ingest_ada" / A / NB).read_bytes() == mine
    assert (sub / "ingest_ben" / A / NB).read_bytes() == honest_notebook(root, "ben")
    assert sorted(p.name for p in (sub / "ingest_mallory" / A).iterdir()) == [NB, "submission_secret.txt",
                                                                               "timestamp.txt"]
    assert CANARY_TEXT.encode() not in all_bytes(sub)
    assert not (sub / "=2*3").exists()
    reasons = " | ".join(intake.set_aside.values())
    assert "belongs to the Unix user ingest_mallory" in reasons
    assert "no timestamp.txt or submission_secret.txt" in reasons
    assert "a link or a file" in reasons and "a student id may hold" in reasons
    assert_clean(sub)


def test_without_the_owner_check_an_id_is_what_was_typed(scratch_course, tmp_path):
    """A classroom on one machine (every student one Unix user): documented, and the default checks owners."""
    exchange = tmp_path / "exchange"
    inbound = ingest.exchange_inbound(exchange, COURSE_ID)
    inbound.mkdir(parents=True)
    inbound_submission(inbound, "ada", "2026-12-01 10:00:00.000000 UTC", honest_notebook(scratch_course), None)
    me = pwd.getpwuid(os.geteuid()).pw_name
    checked = ingest.collect_exchange(scratch_course, A, exchange, COURSE_ID)
    assert checked.students == [] and f"belongs to the Unix user {me}" in " ".join(checked.set_aside.values())
    trusted = ingest.collect_exchange(scratch_course, A, exchange, COURSE_ID, check_owner=False)
    assert trusted.students == ["ada"]


def test_release_feedback_skips_who_has_no_secret_and_releases_the_others(scratch_course, tmp_path):
    from nbgrader.utils import notebook_hash

    root = scratch_course
    for sid, secret in (("ada", "cd" * 64), ("finn", None), ("eve", "not-a-secret")):
        folder = root / "feedback" / sid / A
        folder.mkdir(parents=True)
        (folder / f"{A}.html").write_text(f"<p>feedback of {sid}</p>")
        if secret:
            (folder / "submission_secret.txt").write_text(secret)
    exchange = tmp_path / "exchange"
    intake = ingest.release_feedback(root, A, exchange, COURSE_ID)
    assert intake.students == ["ada"]
    assert set(intake.set_aside) == {"finn", "eve"}
    page = exchange / COURSE_ID / "feedback" / f"{notebook_hash(secret='cd' * 64, notebook_id=A)}.html"
    assert page.read_text() == "<p>feedback of ada</p>"
    assert stat.S_IMODE(page.parent.stat().st_mode) == 0o711  # students cannot list each other's feedback


# -- CSV ---------------------------------------------------------------------------------------

def test_csv_cells_never_become_formulas(tmp_path):
    assert [safe_cell(v) for v in ("=2*3", "+SUM(A1)", "-2+3", "@x", "\t=1", "ada", "-1.5", "18", 3.0)] == \
        ["'=2*3", "'+SUM(A1)", "'-2+3", "'@x", "'\t=1", "ada", "-1.5", "18", "3.0"]
    path = tmp_path / "grades.csv"
    path.write_text('assignment,student_id,last_name,score\n00,ada,"=HYPERLINK(""http://x"")",18\n')
    neutralize(path)
    assert path.read_text().splitlines()[1] == '00,ada,"\'=HYPERLINK(""http://x"")",18'


# -- graded through the exchange, beside honest students ----------------------------------------

@pytest.mark.serial  # grades a class, creates Unix users
def test_a_class_under_ingest_attack_is_graded_and_gets_its_feedback(scratch_course, canary, tmp_path,
                                                                     unix_users, shared_build):
    from course.sandbox import protections

    root = shared_build.release_into(scratch_course, A)
    exchange = tmp_path / "exchange"
    room = Classroom(root, exchange)
    room.release(A)
    inbound = ingest.exchange_inbound(exchange, COURSE_ID)
    ada, ben, mallory = (unix_users[u] for u in USERS)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 10:00:00.000000 UTC", honest_notebook(root), ada)
    inbound_submission(inbound, "ingest_ben", "2026-12-01 10:00:00.000000 UTC", honest_notebook(root, "dev"), ben)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 11:00:00.000000 UTC", honest_notebook(root, "cleo"),
                       mallory)
    inbound_submission(inbound, "ingest_mallory", "2026-12-01 10:30:00.000000 UTC", honest_notebook(root),
                       mallory, extra={"shadow.txt": canary})
    inbound_submission(inbound, "ingest_mallory", "2026-12-01 12:00:00.000000 UTC", b"{}", mallory, secret=False)
    before = digest(root / "source")

    out = room.course("collect", A, "--exchange", str(exchange), "--course-id", COURSE_ID).stdout
    assert "Collected 3 submission(s)" in out and "belongs to the Unix user ingest_mallory" in out
    options = () if all(protections().values()) else ("--allow-unprotected",)
    report = room.grade(A, *options).stdout
    released = room.release_feedback(A).stdout
    assert "Released the feedback of 3 student(s)" in released

    scores = {}
    for sid in USERS:
        page = next((root / "feedback" / sid / A).glob("*.html"))
        scores[sid] = feedback_score(page)[0]
    assert scores == {"ingest_ada": 18, "ingest_ben": 12, "ingest_mallory": 18}, report
    produced = all_bytes(root / "feedback") + all_bytes(root / "autograded") + (root / "grades.csv").read_bytes()
    assert CANARY_TEXT.encode() not in produced
    assert digest(root / "source") == before
    assert len(list((exchange / COURSE_ID / "feedback").glob("*.html"))) == 3


@pytest.mark.serial  # creates Unix users
def test_nbgrader_collect_and_zip_collect_go_through_the_gate(scratch_course, canary, tmp_path, unix_users):
    """nbgrader's own commands (and so the formgrader's Collect button) use the course's exchange classes."""
    from course.nbgrader_run import run_nbgrader

    root = scratch_course
    exchange = tmp_path / "exchange"
    inbound = ingest.exchange_inbound(exchange, COURSE_ID)
    ada, _ben, mallory = (unix_users[u] for u in USERS)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 10:00:00.000000 UTC", honest_notebook(root), ada)
    inbound_submission(inbound, "ingest_ada", "2026-12-01 11:00:00.000000 UTC", b"{}", mallory)
    inbound_submission(inbound, "ingest_mallory", "2026-12-01 10:00:00.000000 UTC", honest_notebook(root), mallory,
                       extra={"shadow.txt": canary})
    proc = run_nbgrader(root, "collect", A, f"--Exchange.root={exchange}", check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "belongs to the Unix user ingest_mallory" in log
    assert (root / "submitted" / "ingest_ada" / A / NB).read_bytes() == honest_notebook(root)
    assert sorted(p.name for p in (root / "submitted" / "ingest_mallory" / A).iterdir()) == [
        NB, "submission_secret.txt", "timestamp.txt"]
    assert CANARY_TEXT.encode() not in all_bytes(root / "submitted")

    archive = root / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "lms.zip", "w") as zf:
        zip_entry(zf, f"ingest_ada_{NB}", honest_notebook(root))
    proc = run_nbgrader(root, "zip_collect", A, "--force", check=False)
    assert proc.returncode != 0 and "course grade ASSIGNMENT --zip FILE" in proc.stdout + proc.stderr
