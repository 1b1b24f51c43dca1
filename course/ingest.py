"""One gate for every submission that comes in: a folder, an LMS zip, the nbgrader exchange.

Whatever the route, a submission reaches ``submitted/<student>/<assignment>/`` through this module
only, and the same rules hold:

- **The id** passes the course's id rule (:func:`check_id`: letters, digits, ``_ . @ -``, at most
  :data:`MAX_ID_CHARS` characters and :data:`MAX_ID_BYTES` bytes, in Unicode's NFC form) and, when a
  roster is given, is on it. Everything downstream (the gradebook, the formgrader, file names, CSVs)
  sees only such ids.
- **The files** are regular files found in real folders: a link (symbolic or hard), a FIFO or a device
  is left out, never followed or opened; no mode bit survives (files are written ``0644``); names are
  plain relative paths; sizes, counts and depth are capped (:data:`MAX_FILE_BYTES`,
  :data:`MAX_SUBMISSION_BYTES`, :data:`MAX_FILES`, :data:`MAX_DEPTH`); an archive is unpacked one level
  deep at most, by streaming with the caps, so a zip bomb costs what the caps allow.
- **Who it belongs to** is decided by the route, never by the student's own files: the folder's name
  (``--submissions DIR``), the LMS zip's entry name (what is inside a student's own archive stays that
  student's), the exchange folder's owner (a Unix user may only hand in under their own name).
- **Reading runs unprivileged**: a child process (``python -m course.ingest``) reads and streams the
  files back; as root it runs as the exchange folder's owner (what a student hands in is what that
  student could read) or, for a zip, as ``nobody`` with the archive on its standard input. The
  instructor's own ``--submissions`` folder is read as the instructor, without following anything.
- **A problem sets one submission aside**, with a reason (:class:`Intake`); the rest of the batch goes
  on. A submission is written to a staging folder and moved into place whole: a failure never leaves
  half of one, and never removes the previous one.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

# -- the id rule --------------------------------------------------------------------------------

# A student id is a folder name and, for nbgrader, a file glob and a field of "<student>+<assignment>+<time>":
# letters (any alphabet), digits, "_", ".", "@" and "-", not first "." or "-" (jane_doe, jdoe@uni.edu, s1234567).
# Refused: "/", spaces, the glob characters * ? [ ], "+", "=" and anything else.
MAX_ID_CHARS = 64
MAX_ID_BYTES = 128  # UTF-8: every file name built from an id (exchange folders, sockets) stays under the limits
STUDENT_ID = re.compile(r"^\w[\w.@-]{0,%d}\Z" % (MAX_ID_CHARS - 1))
STUDENT_ID_RULE = ("a student id may hold letters, digits, '_', '.', '@' and '-' (not first: '.' or '-'), "
                   f"at most {MAX_ID_CHARS} characters")

# -- caps ---------------------------------------------------------------------------------------

MAX_FILE_BYTES = 32 * 1024 ** 2         # one file of a submission
MAX_SUBMISSION_BYTES = 64 * 1024 ** 2   # all the files of one submission
MAX_FILES = 200                         # files in one submission
MAX_DEPTH = 8                           # folders nested in one submission
MAX_ZIP_ENTRIES = 20_000                # entries of one archive (the LMS zip, or a student's inside it)
MAX_ARCHIVE_BYTES = 4 * 1024 ** 3       # uncompressed bytes read from one LMS zip, in all
READER_SECONDS = 600                    # the reading child's whole run
NOBODY = "nobody"


def check_id(sid: str, roster: set[str] | None = None) -> str:
    """Why ``sid`` cannot be a student id here, or ``""`` when it can."""
    if not isinstance(sid, str) or not STUDENT_ID.match(sid):
        return STUDENT_ID_RULE
    if len(sid.encode("utf-8")) > MAX_ID_BYTES:
        return f"a student id may take at most {MAX_ID_BYTES} bytes in UTF-8"
    if unicodedata.normalize("NFC", sid) != sid:
        return "a student id must be in Unicode's composed form (NFC), so that it names one student"
    if roster is not None and sid not in roster:
        return "not on the class roster"
    return ""


def load_roster(path: Path) -> set[str]:
    """Student ids from a roster: a CSV with an ``id`` column (nbgrader's ``db student import`` format), or one
    id per line. An id the rule refuses is an error: the roster is the instructor's own file."""
    import csv

    text = Path(path).read_text(encoding="utf-8-sig")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and "id" in [h.strip() for h in next(csv.reader([lines[0]]))]:
        ids = [row["id"].strip() for row in csv.DictReader(lines) if row.get("id", "").strip()]
    else:
        ids = [ln.strip() for ln in lines]
    bad = [sid for sid in ids if check_id(sid)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} id(s) break the rule ({STUDENT_ID_RULE}): "
                         + ", ".join(repr(b) for b in bad[:5]))
    return set(ids)


def printable_name(name: str, limit: int = 80) -> str:
    """A name from a submission, safe to print (no control characters), shortened."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- what came in -------------------------------------------------------------------------------

@dataclass
class Intake:
    """The result of one collection: who was collected, and what was set aside and why."""

    route: str
    students: list[str] = field(default_factory=list)
    set_aside: dict[str, str] = field(default_factory=dict)   # what was found (printable) -> reason
    left_out: dict[str, list[str]] = field(default_factory=dict)  # student -> files left out (links, ...)

    def aside(self, what: str, why: str) -> None:
        self.set_aside[printable_name(what)] = why

    def summary(self) -> str:
        lines = [f"Collected {len(self.students)} submission(s) from {self.route}."]
        if self.set_aside:
            lines.append(f"Set aside, not collected ({len(self.set_aside)}):")
            lines += [f"  {what}: {why}" for what, why in sorted(self.set_aside.items())]
        for sid, files in sorted(self.left_out.items()):
            lines.append(f"  {sid}: left out {len(files)} file(s): " + "; ".join(files[:5])
                         + (" ..." if len(files) > 5 else ""))
        return "\n".join(lines)


# -- reading (the child process) ----------------------------------------------------------------

class _Budget:
    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0


def _frame(out: IO[bytes], header: dict, data: bytes = b"") -> None:
    line = json.dumps(header, ensure_ascii=True).encode() + b"\n"
    out.write(line)
    out.write(data)


def read_capped(read: Callable[[int], bytes], limit: int) -> bytes | None:
    """Everything ``read(n)`` gives, in chunks, or None as soon as it is more than ``limit`` bytes (a file that
    grows while read, a zip entry whose header lies about its size)."""
    chunks, left = [], limit + 1
    while left > 0:
        chunk = read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    return None if len(data) > limit else data


def _read_fd(fd: int, limit: int) -> bytes | None:
    """At most ``limit`` bytes of an open regular file; None when it holds more."""
    return read_capped(lambda n: os.read(fd, n), limit)


def _walk(dir_fd: int, rel: str, depth: int, out: IO[bytes], budget: _Budget, expect_uid: int | None) -> None:
    """Stream the regular files under an open folder; follow nothing (every open is ``O_NOFOLLOW`` at a dir fd)."""
    try:
        entries = sorted(e.name for e in os.scandir(dir_fd))
    except OSError as exc:
        _frame(out, {"skipped": f"{rel or '.'}: {exc.strerror}"})
        return
    for name in entries:
        path = f"{rel}/{name}" if rel else name
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            _frame(out, {"skipped": f"{path}: {exc.strerror}"})
            continue
        if stat.S_ISLNK(info.st_mode):
            _frame(out, {"skipped": f"{path}: a symbolic link (never followed)"})
        elif stat.S_ISDIR(info.st_mode):
            if depth >= MAX_DEPTH:
                _frame(out, {"skipped": f"{path}: folders nested deeper than {MAX_DEPTH}"})
                continue
            try:
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError as exc:
                _frame(out, {"skipped": f"{path}: {exc.strerror}"})
                continue
            try:
                _walk(sub, path, depth + 1, out, budget, expect_uid)
            finally:
                os.close(sub)
        elif not stat.S_ISREG(info.st_mode):
            _frame(out, {"skipped": f"{path}: not a regular file (a FIFO, socket or device)"})
        else:
            _read_member(dir_fd, name, path, out, budget, expect_uid)


def _read_member(dir_fd: int, name: str, path: str, out: IO[bytes], budget: _Budget, expect_uid: int | None) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        _frame(out, {"skipped": f"{path}: {exc.strerror}"})
        return
    try:
        info = os.fstat(fd)
        why = ""
        if not stat.S_ISREG(info.st_mode):
            why = "not a regular file"
        elif info.st_nlink != 1:
            why = "a hard link (a second name of another file: never read)"
        elif expect_uid is not None and info.st_uid != expect_uid:
            why = "belongs to another user"
        elif budget.files >= MAX_FILES:
            why = f"more than {MAX_FILES} files"
        elif info.st_size > MAX_FILE_BYTES:
            why = f"larger than {MAX_FILE_BYTES // 1024 ** 2} MiB"
        elif budget.bytes + info.st_size > MAX_SUBMISSION_BYTES:
            why = f"the submission would exceed {MAX_SUBMISSION_BYTES // 1024 ** 2} MiB"
        if why:
            _frame(out, {"skipped": f"{path}: {why}"})
            return
        data = _read_fd(fd, min(MAX_FILE_BYTES, MAX_SUBMISSION_BYTES - budget.bytes))
        if data is None:
            _frame(out, {"skipped": f"{path}: grew past the size limit while read"})
            return
        budget.files += 1
        budget.bytes += len(data)
        _frame(out, {"path": path, "size": len(data)}, data)
    except OSError as exc:
        _frame(out, {"skipped": f"{path}: {exc.strerror}"})
    finally:
        os.close(fd)


def read_tree_child(fd: int, out: IO[bytes], expect_uid: int | None = None) -> None:
    """The child's work for a folder the parent opened (``fd``, without following a link): stream its files."""
    try:
        if expect_uid is not None and os.fstat(fd).st_uid != expect_uid:
            _frame(out, {"error": "the folder changed owner while it was collected"})
            return
        _walk(fd, "", 0, out, _Budget(), expect_uid)
    finally:
        os.close(fd)


def _zip_member_kind(info: zipfile.ZipInfo) -> str:
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (Windows tools): a file
    if info.is_dir() or kind == stat.S_IFDIR:
        return "dir"
    return "file" if kind in (0, stat.S_IFREG) else "link or special file"


def _safe_member_path(name: str) -> str:
    """A zip entry's name as a plain relative path, or "" when it is not one (absolute, ``..``, drive, NUL)."""
    if "\0" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return ""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or len(parts) > MAX_DEPTH + 1:
        return ""
    return "/".join(parts)


def _stream_zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """An entry's bytes, decompressed in chunks and stopped past ``limit`` (its header's size is not trusted)."""
    with zf.open(info) as src:
        return read_capped(src.read, limit)


def read_zip_child(src: IO[bytes], out: IO[bytes]) -> None:
    """The child's work for an LMS zip (on stdin): stream each entry, and the files of the zips inside it.

    Each frame names its ``member`` (the LMS zip's entry): that, not anything inside, says whose it is.
    """
    with tempfile.TemporaryFile() as tmp:  # zipfile needs to seek
        shutil.copyfileobj(src, tmp)
        tmp.seek(0)
        try:
            zf = zipfile.ZipFile(tmp)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            _frame(out, {"error": f"not a zip archive ({exc})"})
            return
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            _frame(out, {"error": f"the archive holds {len(infos)} entries, more than {MAX_ZIP_ENTRIES}"})
            return
        total = 0
        for info in infos:
            member = _safe_member_path(info.filename)
            kind = _zip_member_kind(info)
            if kind == "dir":
                continue
            if not member:
                _frame(out, {"member": info.filename, "skipped": "not a plain relative name (absolute, '..')"})
                continue
            if kind != "file":
                _frame(out, {"member": member, "skipped": "a link or special file (never unpacked)"})
                continue
            if total >= MAX_ARCHIVE_BYTES:
                _frame(out, {"member": member, "skipped": f"the archive unpacks to more than "
                             f"{MAX_ARCHIVE_BYTES // 1024 ** 3} GiB: not read"})
                continue
            limit = MAX_SUBMISSION_BYTES if member.lower().endswith(".zip") else MAX_FILE_BYTES
            try:
                data = _stream_zip_entry(zf, info, limit)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
                _frame(out, {"member": member, "skipped": f"cannot be unpacked ({type(exc).__name__})"})
                continue
            if data is None:
                _frame(out, {"member": member, "skipped": f"unpacks to more than {limit // 1024 ** 2} MiB"})
                total += limit
                continue
            total += len(data)
            if not member.lower().endswith(".zip"):
                _frame(out, {"member": member, "path": member.rsplit("/", 1)[-1], "size": len(data)}, data)
                continue
            _inner_zip(member, data, out)


def _inner_zip(member: str, data: bytes, out: IO[bytes]) -> None:
    """A student's own archive inside the LMS zip: its regular files, capped, one level deep (no zip in a zip)."""
    import io

    try:
        inner = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        _frame(out, {"member": member, "skipped": f"not a zip archive ({exc})"})
        return
    infos = inner.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        _frame(out, {"member": member, "skipped": f"holds more than {MAX_ZIP_ENTRIES} entries"})
        return
    budget = _Budget()
    for info in infos:
        path = _safe_member_path(info.filename)
        kind = _zip_member_kind(info)
        if kind == "dir":
            continue
        label = f"{member}: {printable_name(info.filename)}"
        if not path or kind != "file":
            _frame(out, {"member": member, "skipped": f"{label}: "
                         + ("not a plain relative name" if not path else "a link or special file")})
            continue
        if path.lower().endswith(".zip"):
            _frame(out, {"member": member, "skipped": f"{label}: an archive inside an archive (not unpacked)"})
            continue
        if budget.files >= MAX_FILES:
            _frame(out, {"member": member, "skipped": f"{label}: more than {MAX_FILES} files"})
            continue
        try:
            content = _stream_zip_entry(inner, info, min(MAX_FILE_BYTES, MAX_SUBMISSION_BYTES - budget.bytes))
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            _frame(out, {"member": member, "skipped": f"{label}: cannot be unpacked ({type(exc).__name__})"})
            continue
        if content is None:
            _frame(out, {"member": member, "skipped": f"{label}: over the size limit"})
            continue
        budget.files += 1
        budget.bytes += len(content)
        _frame(out, {"member": member, "path": path, "size": len(content), "inner": True}, content)


# -- reading (the parent) -----------------------------------------------------------------------

@dataclass
class _File:
    path: str
    data: bytes
    member: str | None = None
    inner: bool = False


def open_folder(path: str) -> int:
    """A folder's descriptor, never through a link (the last component; the ones above are the course's)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _read_folder(path: str, uid: int | None, expect_uid: int | None = None):
    """Stream a folder through the reading child (as ``uid``); the folder is opened here and handed over."""
    try:
        fd = open_folder(path)
    except OSError as exc:
        return [], [], f"cannot open the folder: {exc.strerror}"
    try:
        args = ["read-tree", f"--fd={fd}"] + ([f"--uid={expect_uid}"] if expect_uid is not None else [])
        return _run_reader(args, uid, pass_fds=(fd,))
    finally:
        os.close(fd)


def _reader_command(args: list[str], uid: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "course.ingest", *args]
    if uid is None or os.geteuid() != 0 or uid == 0 or not shutil.which("setpriv"):
        return cmd
    gid = pwd.getpwuid(uid).pw_gid if _has_user(uid) else uid
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", *cmd]


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _nobody_uid() -> int:
    try:
        return pwd.getpwnam(NOBODY).pw_uid
    except KeyError:
        return 65534


def _run_reader(args: list[str], uid: int | None, stdin: IO[bytes] | None = None,
                max_bytes: int = MAX_SUBMISSION_BYTES, pass_fds: tuple[int, ...] = ()) -> tuple[list[_File], list[tuple[str | None, str]], str]:
    """Run the reading child; returns (files, skipped (member, why), error). Every frame is checked here again."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join(sys.path),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(_reader_command(args, uid), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.PIPE, env=env, cwd="/", timeout=READER_SECONDS,
                                  pass_fds=pass_fds)
        except subprocess.TimeoutExpired:
            return [], [], f"reading it took longer than {READER_SECONDS} s"
        if proc.returncode != 0:
            return [], [], ("the reader failed: " + proc.stderr.decode(errors="replace").strip()[-300:]
                            if proc.stderr else f"the reader failed (exit {proc.returncode})")
        out.seek(0)
        return _parse_frames(out, max_bytes)


def _parse_frames(out: IO[bytes], max_bytes: int) -> tuple[list[_File], list[tuple[str | None, str]], str]:
    files: list[_File] = []
    skipped: list[tuple[str | None, str]] = []
    total = 0
    while True:
        line = out.readline(8192)
        if not line:
            break
        try:
            header = json.loads(line)
        except ValueError:
            return files, skipped, "the reader's output is not readable"
        if not isinstance(header, dict):
            return files, skipped, "the reader's output is not readable"
        member = header.get("member")
        member = member if isinstance(member, str) else None
        if "error" in header:
            return files, skipped, str(header["error"])[:300]
        if "skipped" in header:
            skipped.append((member, str(header["skipped"])[:300]))
            continue
        size, path = header.get("size"), header.get("path")
        if not isinstance(size, int) or not isinstance(path, str) or size < 0 or size > MAX_SUBMISSION_BYTES:
            return files, skipped, "the reader's output is not readable"
        total += size
        if total > max_bytes:
            return files, skipped, f"more than {max_bytes // 1024 ** 2} MiB in all"
        data = out.read(size)
        if len(data) != size:
            return files, skipped, "the reader's output is cut short"
        files.append(_File(path, data, member, bool(header.get("inner"))))
    return files, skipped, ""


# -- writing ------------------------------------------------------------------------------------

def _clean_relpath(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in rel:
        return ""
    return rel


def write_submission(root: Path, assignment: str, sid: str, files: dict[str, bytes]) -> None:
    """Put one submission in ``submitted/<sid>/<assignment>/``, whole: staged, then moved into place."""
    from course.jobs import write_tree

    assert not check_id(sid), sid
    base = root / "submitted"
    base.mkdir(parents=True, exist_ok=True)
    student = base / sid
    if student.is_symlink() or (student.exists() and not student.is_dir()):
        student.unlink()
    student.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=student))
    try:
        write_tree(staging, files)
        dest = student / assignment
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.exists():
            old = student / f".replaced-{staging.name}"
            dest.rename(old)
            shutil.rmtree(old)
        staging.rename(dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _left_out(skipped) -> list[str]:
    return [printable_name(why, 160) for _member, why in skipped]


# -- the routes ---------------------------------------------------------------------------------

def collect_folder(root: Path, assignment: str, folder: Path, only_this_assignment: bool = False,
                   roster: set[str] | None = None) -> Intake:
    """``folder/<student>/<assignment>/*`` (or ``folder/<student>/*``) -> ``submitted/``; each folder's name is the id.

    ``only_this_assignment``: take only students with a ``<assignment>/`` folder (a class with several).
    A student folder that is a link (to ``source/``, to another student) is set aside, never followed.
    """
    folder = Path(folder)
    intake = Intake(f"folder {folder}")
    try:
        info = os.lstat(folder)
    except OSError:
        raise FileNotFoundError(f"{folder} is not a folder of submissions (expected {folder}/<student>/...).")
    if not stat.S_ISDIR(info.st_mode):
        raise FileNotFoundError(f"{folder} is not a folder of submissions (expected {folder}/<student>/...)"
                                + (": it is a link; name the folder itself" if stat.S_ISLNK(info.st_mode) else "."))
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        sid = entry.name
        if entry.is_symlink():
            intake.aside(sid, "a link, not a folder (never followed)")
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        why = check_id(sid, roster)
        if why:
            intake.aside(sid, why)
            continue
        sub = Path(entry.path) / assignment
        has_own = os.path.lexists(sub)
        if only_this_assignment and not has_own:
            continue
        if has_own and not stat.S_ISDIR(os.lstat(sub).st_mode):
            intake.aside(sid, f"{assignment} is a link or a file, not a folder (never followed)")
            continue
        _ingest(root, assignment, sid, str(sub if has_own else entry.path), None, intake)
    return intake


def _ingest(root: Path, assignment: str, sid: str, path: str, uid: int | None, intake: Intake,
            expect_uid: int | None = None) -> bool:
    files, skipped, error = _read_folder(path, uid, expect_uid)
    if error:
        intake.aside(sid, error)
        return False
    out = {}
    for f in files:
        rel = _clean_relpath(f.path)
        if not rel:
            skipped.append((None, f"{printable_name(f.path)}: not a plain relative name"))
            continue
        out[rel] = f.data
    write_submission(root, assignment, sid, out)
    intake.students.append(sid)
    if skipped:
        intake.left_out[sid] = _left_out(skipped)
    return True


def zip_pattern(root: Path) -> re.Pattern:
    """How an LMS zip's entries are named (nbgrader's ``FileNameCollectorPlugin.named_regexp`` in the config)."""
    from traitlets.config.loader import PyFileConfigLoader

    default = r".*/(?P<student_id>[^/]+)_(?P<file_id>\d\d_[^/]+)$"
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        pattern = config.FileNameCollectorPlugin.get("named_regexp", default)
    except Exception:  # no config, or one that does not load: the course's convention
        pattern = default
    return re.compile(pattern if isinstance(pattern, str) else default)


def collect_zip(root: Path, assignment: str, zip_path: Path, roster: set[str] | None = None) -> Intake:
    """An LMS zip -> ``submitted/``: each entry named ``<student>_<file>`` (``jane_doe_00_topic.ipynb``) is that
    student's file; a student's own zip inside it (``jane_doe_00_topic.zip``) is unpacked into their submission,
    one level deep. Names inside a student's archive never choose a student."""
    zip_path = Path(zip_path)
    if not zip_path.is_file() or not zipfile.is_zipfile(zip_path):
        raise ValueError(f"{zip_path} is not a zip archive.")
    intake = Intake(f"zip {zip_path.name}")
    pattern = zip_pattern(root)
    with open(zip_path, "rb") as src:
        files, skipped, error = _run_reader(["read-zip"], _nobody_uid(), stdin=src, max_bytes=MAX_ARCHIVE_BYTES)
    if error:
        raise ValueError(f"{zip_path}: {error}")
    owner: dict[str, tuple[str, str]] = {}  # member -> (student, file name)
    by_student: dict[str, dict[str, bytes]] = {}
    problems: dict[str, str] = {}

    def attribute(member: str) -> tuple[str, str] | None:
        if member not in owner:
            m = pattern.match("/" + member) or pattern.match(member)
            if not m or "student_id" not in m.groupdict() or "file_id" not in m.groupdict():
                owner[member] = ("", "")
            else:
                owner[member] = (m.group("student_id"), m.group("file_id"))
        return owner[member] if owner[member][0] else None

    for member, why in skipped:
        who = attribute(member) if member else None
        if who and not check_id(who[0], roster):
            intake.left_out.setdefault(who[0], []).append(printable_name(f"{member}: {why}", 200))
        else:
            intake.aside(member or "?", why)
    for f in files:
        who = attribute(f.member or "")
        if who is None:
            intake.aside(f.member or f.path, "its name is not <student>_<notebook> (nbgrader's "
                                             "FileNameCollectorPlugin.named_regexp)")
            continue
        sid, file_id = who
        why = check_id(sid, roster)
        if why:
            intake.aside(f.member or sid, why)
            continue
        if f.inner:
            rel = _clean_relpath(f.path)
        else:
            rel = _clean_relpath(file_id)
        if not rel:
            intake.left_out.setdefault(sid, []).append(printable_name(f"{f.path}: not a plain relative name"))
            continue
        files_of = by_student.setdefault(sid, {})
        if rel in files_of:
            problems[sid] = f"two files named {printable_name(rel)} in the archive: which one is meant?"
        files_of[rel] = f.data
        if sum(len(v) for v in files_of.values()) > MAX_SUBMISSION_BYTES or len(files_of) > MAX_FILES:
            problems[sid] = (f"more than {MAX_SUBMISSION_BYTES // 1024 ** 2} MiB or {MAX_FILES} files in the "
                             "archive for this student")
    for sid, files_of in sorted(by_student.items()):
        if sid in problems:
            intake.aside(sid, problems[sid])
            continue
        write_submission(root, assignment, sid, files_of)
        intake.students.append(sid)
    return intake


@dataclass
class _Inbound:
    name: str
    sid: str
    timestamp: object
    uid: int
    owner: str


def exchange_inbound(exchange_root: Path, course_id: str) -> Path:
    return Path(exchange_root) / course_id / "inbound"


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


SECRET = re.compile(r"^[0-9a-f]{32,256}\Z")


def collect_exchange(root: Path, assignment: str, exchange_root: Path, course_id: str, *,
                     check_owner: bool = True, roster: set[str] | None = None) -> Intake:
    """nbgrader's exchange inbound -> ``submitted/``: each student's newest submission made with ``nbgrader submit``.

    ``check_owner`` (the default): a folder named ``<sid>+...`` counts only if the Unix user ``sid`` owns it,
    and it is read as that user. Turn it off only where every student is the same Unix user (a classroom on one
    machine): then an id is whatever the student typed.
    """
    from nbgrader.utils import parse_utc

    inbound = exchange_inbound(exchange_root, course_id)
    intake = Intake(f"the exchange ({inbound})")
    try:
        info = os.lstat(inbound)
    except OSError:
        raise FileNotFoundError(f"no exchange inbound folder at {inbound}: release an assignment first "
                                "(nbgrader release_assignment), or pass --exchange")
    if not stat.S_ISDIR(info.st_mode):
        raise FileNotFoundError(f"{inbound} is not a folder (a link?): refusing to collect from it")
    records: dict[str, list[_Inbound]] = {}
    for entry in os.scandir(inbound):
        parts = entry.name.split("+")
        if len(parts) < 3 or parts[1] != assignment:
            continue
        sid, name = parts[0], entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            intake.aside(name, "a link or a file, not a submission folder (never followed)")
            continue
        why = check_id(sid, roster)
        if why:
            intake.aside(name, why)
            continue
        owner = _owner_name(st.st_uid)
        if check_owner and owner != sid:
            intake.aside(name, f"claims to be {sid}'s submission but belongs to the Unix user {owner}: "
                               "not collected (a student may submit only under their own name)")
            continue
        try:
            ts = parse_utc(parts[2])
        except (ValueError, OverflowError, TypeError):
            intake.aside(name, "its time stamp is not a date")
            continue
        records.setdefault(sid, []).append(_Inbound(name, sid, ts, st.st_uid, owner))
    for sid in sorted(records):
        for rec in sorted(records[sid], key=lambda r: r.timestamp, reverse=True):  # newest that is whole
            path = str(inbound / rec.name)
            read_as = rec.uid if (check_owner and rec.uid != 0) else None
            files, skipped, error = _read_folder(path, read_as, rec.uid)
            names = {f.path for f in files}
            if not error and not {"timestamp.txt", "submission_secret.txt"} <= names:
                error = "not made with `nbgrader submit` (no timestamp.txt or submission_secret.txt)"
            if not error:
                secret = next(f.data for f in files if f.path == "submission_secret.txt").decode(errors="replace")
                stamp = next(f.data for f in files if f.path == "timestamp.txt").decode(errors="replace")
                try:
                    parse_utc(stamp.strip())
                except (ValueError, OverflowError, TypeError):
                    error = "its timestamp.txt is not a date"
                if not SECRET.match(secret.strip()):
                    error = "its submission_secret.txt is not nbgrader's"
            if error:
                intake.aside(rec.name, error)
                continue
            out = {_clean_relpath(f.path): f.data for f in files if _clean_relpath(f.path)}
            write_submission(root, assignment, sid, out)
            intake.students.append(sid)
            if skipped:
                intake.left_out[sid] = _left_out(skipped)
            break
    return intake


def release_feedback(root: Path, assignment: str, exchange_root: Path, course_id: str,
                     students: list[str] | None = None, owner_only: bool = False) -> Intake:
    """``feedback/<sid>/<assignment>/*.html`` -> the exchange, where ``nbgrader fetch_feedback`` finds it.

    nbgrader's ``release_feedback`` stops for the whole class at the first student whose feedback has no
    ``submission_secret.txt`` (collected from a folder or a zip); here such a student is set aside with the
    reason, and the others get theirs. Names are nbgrader's (``notebook_hash(secret, notebook)``).

    ``owner_only`` (a class where each student id is a Unix user: JupyterHub; run as root): each file belongs to
    the student's Unix user, mode 0600, so a classmate who learns its name still cannot read it (otherwise 0644,
    hidden by its name only). A student without a Unix user of that name is set aside.
    """
    from nbgrader.utils import notebook_hash

    from course.jobs import read_file

    intake = Intake("feedback/")
    dest = Path(exchange_root) / course_id / "feedback"
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o711)  # students find their own file by its hash, and cannot list the others'
    base = root / "feedback"
    found = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    for sid in found:
        if students is not None and sid not in students:
            continue
        if check_id(sid):
            intake.aside(sid, check_id(sid))
            continue
        folder = base / sid / assignment
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            secret = read_file(folder / "submission_secret.txt", 4096).decode().strip()
        except (OSError, UnicodeDecodeError):
            intake.aside(sid, "no submission_secret.txt: collected from a folder or a zip, not the exchange; "
                              f"hand them feedback/{sid}/{assignment}/ another way")
            continue
        if not SECRET.match(secret):
            intake.aside(sid, "its submission_secret.txt is not nbgrader's")
            continue
        owner = None
        if owner_only:
            try:
                entry = pwd.getpwnam(sid)
                owner = (entry.pw_uid, entry.pw_gid)
            except KeyError:
                intake.aside(sid, f"no Unix user {sid}: feedback not released (--owner-only)")
                continue
        pages = [p for p in sorted(folder.glob("*.html")) if not p.is_symlink() and p.is_file()]
        for page in pages:
            data = read_file(page)
            name = notebook_hash(secret=secret, notebook_id=page.stem)
            tmp = dest / f"{name}-tmp.html"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            if owner:
                os.chown(tmp, *owner)
            os.chmod(tmp, 0o600 if owner else 0o644)
            os.replace(tmp, dest / f"{name}.html")
        if pages:
            intake.students.append(sid)
    return intake


# -- the child's entry point --------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout.buffer
    options = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    if argv[:1] == ["read-tree"] and "fd" in options and len(options) == len(argv) - 1:
        read_tree_child(int(options["fd"]), out, int(options["uid"]) if "uid" in options else None)
    elif argv == ["read-zip"]:
        read_zip_child(sys.stdin.buffer, out)
    else:
        print("usage: python -m course.ingest read-tree --fd=N [--uid=N] | read-zip < ARCHIVE", file=sys.stderr)
        return 2
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
