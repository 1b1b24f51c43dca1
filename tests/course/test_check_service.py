"""The check service (course/check_service.py) and its client (course/check_client.py): a real service on
127.0.0.1, real checks of notebook 00, and a student who has read the code attacking it.

The tests that start the service (and a kernel, a hub) are ``serial``: they share one service per module,
with a budget of 3 checks per student and assignment per hour and 2 graders.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from course import check_client, check_service
from course.check_service import Budget, CheckLog, Shield, TokensFile, _parse, safe_problem, safe_reason
from course.notebooks import hidden_test_code, read_notebook
from tests.conftest import ROOT

A = "00_gradient_checking"
PY = sys.executable
TOKENS = {"ada": "tok-ada-7d1e9c0b55aa41f2", "dev": "tok-dev-0b3f6a7e21c94d88", "eve": "tok-eve-5c2a9e1f0d7b4a63",
          "olga": "tok-olga-91e4c7b2a6d05f38", "spy": "tok-spy-3e8b1d6f2a9c0e74", "finn": "tok-finn-6a0d2f9b3c1e8e57",
          "hog": "tok-hog-2f7c0a9d4e1b6c35"}


def example(student: str) -> Path:
    return ROOT / "examples" / "class_00" / student / A / f"{A}.ipynb"


def hidden_lines() -> list[str]:
    """Lines of the hidden tests of notebook 00 worth searching for (not `)` or `import numpy as np`)."""
    nb = read_notebook(ROOT / "source" / A / f"{A}.ipynb")
    return [ln.strip() for ln in hidden_test_code(nb) if len(ln.strip()) >= 12 and not ln.strip().startswith("#")]


# -- units: no service --------------------------------------------------------------------------------

def test_the_budget_counts_checks_in_flight_and_is_read_back_from_the_log(tmp_path):
    log = CheckLog(tmp_path / "checks.jsonl")
    budget = Budget(2, 3600, log)
    budget.reserve("ada", A)
    assert budget.used("ada", A) == 1  # a check in flight counts: two at once cannot both slip under the limit
    budget.settle("ada", A, counted=False, at=time.time())  # the service failed: it costs nothing
    assert budget.used("ada", A) == 0
    for _ in range(2):
        log.write({"t": time.time(), "student": "ada", "assignment": A, "outcome": "graded", "counted": True})
    log.write({"t": time.time(), "student": "ada", "assignment": A, "outcome": "service-error", "counted": False})
    log.write({"t": time.time() - 7200, "student": "ada", "assignment": A, "outcome": "graded", "counted": True})
    again = Budget(2, 3600, CheckLog(tmp_path / "checks.jsonl"))  # a restart reads the log
    assert again.used("ada", A) == 2 and again.used("dev", A) == 0 and again.used("ada", "01_activations") == 0
    statement = again.statement("ada", A)["text"]
    assert statement.startswith("2 of 2 checks of 00_gradient_checking used in the last 1 h; the next one is "
                                "available at ")
    assert stat.S_IMODE(os.stat(tmp_path / "checks.jsonl").st_mode) == 0o600


def test_a_tokens_file_must_be_private_and_well_formed(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# token student\nabcdefghijklmnop0001 ada\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="can be read by other users"):
        TokensFile(path)
    path.chmod(0o600)
    tokens = TokensFile(path)
    import asyncio

    assert asyncio.run(tokens.student("abcdefghijklmnop0001")) == "ada"
    with pytest.raises(check_service.Forbidden, match="not one the check service knows"):
        asyncio.run(tokens.student("abcdefghijklmnop0002"))
    for bad, why in (("short ada\n", "16 to"), ("abcdefghijklmnop0001 ../ada\n", "id"),
                     ("abcdefghijklmnop0001 ada\nabcdefghijklmnop0001 dev\n", "given twice"),
                     ("abcdefghijklmnop0001\n", "expected")):
        path.write_text(bad)
        with pytest.raises(ValueError, match=why):
            TokensFile(path)


def test_path_tricks_and_bad_bodies_get_a_reason():
    known = [A, "01_activations"]
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for name in ("../source", f"{A}/../../etc", "/etc/passwd", f"{A}\0", "", "00_GRADIENT_CHECKING", "source"):
        assert "unknown assignment" in _parse(json.dumps({"assignment": name, "notebook": nb}).encode(), known)
    assert "not JSON" in _parse(b"{not json", known)
    assert "not JSON" in _parse(b"\xff\xfe", known)
    assert "must be" in _parse(json.dumps({"assignment": A, "notebook": "a string"}).encode(), known)
    assert "must be" in _parse(json.dumps([A]).encode(), known)
    assert "not JSON" in _parse(b"[" * 100_000 + b"]" * 100_000, known)  # nested too deep for json
    assignment, raw = _parse(json.dumps({"assignment": A, "notebook": nb, "student": "ada"}).encode(), known)
    assert assignment == A and json.loads(raw) == nb  # a "student" field is ignored: the token says who


def test_a_reason_is_the_trusted_runs_or_a_fixed_phrase():
    """The kernel's run sees the hidden tests and the library: what it says is never passed on."""
    leak = "ValueError: LEAK check_close(affine_forward(x, W, b)[0], x @ W + b)"
    assert safe_reason(leak, "") == check_service.KERNEL_ONLY
    assert safe_reason("not done yet: the function still raises NotImplementedError", None).startswith("not done")
    assert safe_reason(leak, "Mistake: the loss is summed over the batch") == "the loss is summed over the batch"
    assert safe_reason(leak, "StudentError: MyError: boom") == "MyError: boom"
    assert safe_reason(leak, "NotImplementedError: ") == "not done yet: the function still raises NotImplementedError"
    assert safe_problem("nbgrader could not grade it: Kernel died: secret line") == (
        "not graded: your notebook's kernel died (it crashed, or was stopped at a limit)")


def test_the_shield_replaces_a_reason_that_quotes_a_hidden_test():
    shield = Shield(ROOT, A)
    line = max(hidden_lines(), key=len)
    assert shield.quotes(f"ValueError: {line}") and "not shown" in shield.clean(f"x {line} y")
    assert shield.clean("the loss is summed over the batch") == "the loss is summed over the batch"


def test_hub_configuration_gives_students_the_services_scope():
    entry = check_service.hub_service_config(Path("/srv/course"), port=8770, budget=5, window_hours=12)
    assert entry["name"] == "check" and entry["url"] == "http://127.0.0.1:8770"
    assert entry["command"][1:4] == ["-m", "course.cli", "check-service"]
    assert entry["command"][entry["command"].index("--budget") + 1] == "5"
    from jupyterhub.services.service import Service

    assert set(entry) <= set(Service.class_trait_names())  # the hub refuses an entry with a field it lacks
    assert check_service.hub_roles() == [{"name": "user", "scopes": ["self", "access:services!service=check"]}]
    assert "access:services!service=check" in check_service.hub_server_token_scopes()
    from traitlets.config import Config

    c = Config()
    check_service.configure_hub(c, Path("/srv/course"), groups=["students"])
    assert c.JupyterHub.services[0]["name"] == "check"
    assert c.JupyterHub.load_roles[0]["groups"] == ["students"]
    assert c.Spawner.environment["COURSE_CHECK_URL"] == "http://127.0.0.1:8765/services/check/"
    assert check_service.check_url(entry, "https://hub.example.edu/") == "https://hub.example.edu/services/check/"


def test_without_a_service_nothing_is_sent_and_an_unreachable_one_is_said(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_CHECK_URL", raising=False)
    assert check_client.service_url() is None
    path = tmp_path / f"{A}.ipynb"
    shutil.copy2(example("ada"), path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reply = check_client.check_notebook(path, url=f"http://127.0.0.1:{port}/", token="x" * 20)
    assert reply.exit_code == 2 and "could not be reached" in reply.report and "no check was counted" in reply.report


def test_with_a_service_the_magic_imports_only_the_client(tmp_path):
    """The student edition has course.magic and course.check_client, no grader: %check must need nothing else."""
    path = tmp_path / f"{A}.ipynb"
    shutil.copy2(example("ada"), path)
    code = ("import sys, course.magic as m; m.check(sys.argv[1], {}); "
            "print(sorted(n for n in sys.modules if n.startswith('course')))")
    env = {**os.environ, "COURSE_CHECK_URL": "http://127.0.0.1:9/", "COURSE_CHECK_TOKEN": "x" * 20}
    out = subprocess.run([PY, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "could not be reached" in out
    assert out.strip().splitlines()[-1] == "['course', 'course.check_client', 'course.magic']"


# -- a real service -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``course check-service`` in a process of its own, on a scratch copy of the course."""

    def __init__(self, root: Path, tokens: Path, log: Path, *args: str):
        self.root, self.tokens, self.log, self.args = root, tokens, log, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.out = open(self.root / "service.out", "ab")
        self.proc = subprocess.Popen([PY, "-m", "course.cli", "check-service", "--course", str(self.root),
                                      "--tokens", str(self.tokens), "--log", str(self.log), "--port", str(self.port),
                                      *self.args], stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                return
            except OSError:
                assert self.proc.poll() is None, (self.root / "service.out").read_text()[-3000:]
                time.sleep(0.3)
        raise TimeoutError("the check service did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.out.close()

    def post(self, body: bytes | dict, token: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "check", data=data, method="POST", headers={
            **({"Authorization": f"token {token}"} if token else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=900) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def check(self, who: str, notebook: Path, token: str | None = None, extra: dict | None = None
              ) -> tuple[int, dict]:
        nb = check_client.load_notebook(notebook)
        return self.post({"assignment": A, "notebook": nb, **(extra or {})}, token or TOKENS[who])

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("check-course")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    tokens = root.parent / f"{root.name}-tokens"
    tokens.write_text("".join(f"{token} {student}\n" for student, token in TOKENS.items()))
    tokens.chmod(0o600)
    svc = Service(root, tokens, root / "check_service" / "checks.jsonl", "--budget", "3", "--window", "1",
                  "--workers", "2", "--cell-timeout", "10", "--notebook-timeout", "120")
    svc.start()
    yield svc
    svc.stop()


def report_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Running every test")]


@pytest.mark.serial
def test_a_correct_notebook_gets_full_marks_from_the_service(service):
    status, reply = service.check("ada", example("ada"))
    assert status == 200, reply
    assert reply["student"] == "ada" and reply["score"] == reply["max_score"] == 18
    assert "18 / 18 points" in reply["report"] and "Well done" in reply["report"]
    assert [e["points"] for e in reply["exercises"]] == [3.0] * 6
    assert reply["budget_text"] == "1 of 3 checks of 00_gradient_checking used in the last 1 h"
    entry = service.entries()[-1]
    import hashlib

    assert entry["student"] == "ada" and entry["score"] == 18 and entry["outcome"] == "graded" and entry["counted"]
    assert entry["sha256"] == hashlib.sha256(json.dumps(check_client.load_notebook(example("ada"))).encode()
                                             ).hexdigest()
    assert set(entry) >= {"time", "student", "assignment", "sha256", "score", "seconds", "outcome"}


@pytest.mark.serial
def test_a_named_mistake_gets_the_same_report_as_a_local_check(service, tmp_path):
    """dev sums the loss over the batch; the service's report is course check's, line for line. The body's
    "student" field (a student naming a classmate) changes nothing: the token says who asks."""
    status, reply = service.check("dev", example("dev"), extra={"student": "ada"})
    assert status == 200 and reply["student"] == "dev" and reply["score"] == 12
    assert "The loss is summed over the batch; the course uses the mean (divide by N)." in reply["report"]
    env = {**os.environ, "COURSE_ROOT": str(service.root)}
    env.pop("COURSE_CHECK_URL", None)
    local = subprocess.run([PY, "-m", "course.cli", "check", str(example("dev"))], capture_output=True, text=True,
                           env=env, timeout=600)
    assert local.returncode == 1, local.stderr[-2000:]
    assert report_lines(reply["report"]) == report_lines(local.stdout)


@pytest.mark.serial
def test_identity_is_the_tokens_and_nothing_else(service):
    body = {"assignment": A, "notebook": check_client.load_notebook(example("ada"))}
    before = len(service.entries())
    for headers, why in (({}, "no token"), ({"Authorization": "token tok-ada-7d1e9c0b55aa41f3"}, "not one"),
                         ({"Authorization": "Basic YWRhOmFkYQ=="}, "no token"),
                         ({"Authorization": "token " + "a" * 5000}, "not one"),
                         ({"X-Student": "ada"}, "no token")):
        status, reply = service.post(body, headers=headers)
        assert status == 403 and why in reply["error"], (headers, reply)
    # a token in the URL (it would be logged by proxies and servers) is not read
    request = urllib.request.Request(service.url + f"check?token={TOKENS['ada']}", data=json.dumps(body).encode(),
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 403
    entries = service.entries()[before:]
    assert [e["outcome"] for e in entries] == ["forbidden"] * 6 and not any(e["counted"] for e in entries)


@pytest.mark.serial
def test_tokens_are_never_logged(service):
    """A student who reads the log (or the service's output) finds no token to replay as a classmate."""
    text = service.log.read_text() + (service.root / "service.out").read_text()
    assert text and not [t for t in TOKENS.values() if t in text]


@pytest.mark.serial
def test_bad_input_gets_a_reason_and_costs_nothing(service):
    olga = TOKENS["olga"]
    nb = check_client.load_notebook(example("ada"))
    for assignment in ("../source", "00_gradient_checking/../../..", "nope"):
        status, reply = service.post({"assignment": assignment, "notebook": nb}, olga)
        assert status == 400 and "unknown assignment" in reply["error"]
    status, reply = service.post(b"{\"assignment\": ", olga)
    assert status == 400 and "not JSON" in reply["error"]
    other = check_client.load_notebook(ROOT / "release" / "01_activations" / "01_activations.ipynb")
    status, reply = service.post({"assignment": A, "notebook": other}, olga)
    assert status == 400 and "does not contain this assignment's exercises" in reply["error"]
    assert "01_activations" in reply["error"]
    status, reply = service.post({"assignment": A, "notebook": {"cells": "no"}}, olga)
    assert status == 400 and "not a valid notebook" in reply["error"]
    # a huge body: its declared size is refused before a byte of it is read
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as s:
        s.sendall(f"POST /check HTTP/1.1\r\nHost: x\r\nAuthorization: token {olga}\r\n"
                  "Content-Length: 10000000000\r\n\r\n".encode() + b"{" * 65536)
        answer = s.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413") and "a notebook may be" in answer
    # and one that does not say its size (chunked) is cut off at the cap
    def chunks():
        piece = b" " * (1 << 20)
        for _ in range(40):
            yield piece
    request = urllib.request.Request(service.url + "check", data=chunks(), method="POST", headers={
        "Authorization": f"token {olga}", "Transfer-Encoding": "chunked"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:  # the service closed the connection while the client was still sending
        status = 413
    assert status == 413
    assert not [e for e in service.entries() if e.get("student") == "olga" and e["counted"]]
    assert service.proc.poll() is None


@pytest.mark.serial
def test_the_budget_is_enforced_stated_and_survives_a_restart(service):
    """olga uses the grader as an oracle: 3 checks an hour, then 429 with when the next one comes; a restart of
    the service does not give them back."""
    release = ROOT / "release" / A / f"{A}.ipynb"
    texts = []
    for n in range(1, 4):
        status, reply = service.check("olga", release)
        assert status == 200 and reply["score"] == 0 and "not done yet" in reply["report"]
        texts.append(reply["budget_text"])
    assert texts[:2] == [f"{n} of 3 checks of 00_gradient_checking used in the last 1 h" for n in (1, 2)]
    assert texts[2].startswith("3 of 3 checks of 00_gradient_checking used in the last 1 h; the next one is "
                               "available at ")
    status, reply = service.check("olga", release)
    assert status == 429, reply
    assert reply["error"].startswith("no checks of 00_gradient_checking left: 3 of 3 checks of "
                                     "00_gradient_checking used in the last 1 h; the next one is available at ")
    assert 3500 <= reply["retry_after_seconds"] <= 3601 and reply["next_at"]
    assert service.check("ada", release)[0] == 200  # another student's budget is their own
    service.stop()
    service.start()
    status, again = service.check("olga", release)
    assert status == 429 and again["budget"]["used"] == 3 and again["next_at"] == reply["next_at"]
    outcomes = [e["outcome"] for e in service.entries() if e.get("student") == "olga"]
    assert outcomes.count("graded") == 3 and outcomes.count("over-budget") == 2


def _descendants(pid: int):
    import psutil

    return psutil.Process(pid).children(recursive=True)


@pytest.mark.serial
def test_a_failure_on_the_services_side_costs_nothing(service):
    """The grading process dies (the instructor's machine killed it): a plain 500, and the check is not counted."""
    import psutil

    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(reply=service.check("finn", example("ada"))))
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        for proc in _descendants(service.proc.pid):
            try:  # a job's own process: a child of the forkserver, running course.jobs._worker
                if "forkserver" in " ".join(proc.parent().cmdline()) and proc.uids().real == 0 \
                        and any(c.uids().real != 0 for c in proc.children(recursive=True)):
                    proc.kill()
                    killed = proc.pid
                    break
            except psutil.Error:
                continue
        time.sleep(0.2)
    thread.join(300)
    assert killed, "no grading process found"
    status, reply = result["reply"]
    assert status == 500 and "not counted" in reply["error"], reply
    assert reply["budget_text"] == "0 of 3 checks of 00_gradient_checking used in the last 1 h"
    entry = service.entries()[-1]
    assert entry["outcome"] == "service-error" and not entry["counted"] and "died" in entry["reason"]
    status, reply = service.check("finn", example("ada"))  # and the next check is graded as usual
    assert status == 200 and reply["score"] == 18 and reply["budget"]["used"] == 1


SPY_SETUP = '''
_SEEN = []
try:  # in the student's kernel: keep the source of every cell run after this one (the hidden tests)
    get_ipython().events.register("pre_run_cell", lambda info: _SEEN.append(info.raw_cell))
except NameError:  # the trusted re-run has no IPython
    pass


def _peek(path):
    try:
        with open(path) as f:
            return "READ " + f.read(300)
    except Exception as exc:
        return type(exc).__name__
'''


def spy_notebook(path: Path, secrets: list[str], checks_file: str) -> Path:
    """ada's answers, plus: affine_forward is wrong if any service file can be read; softmax_cross_entropy
    raises with the hidden tests it saw run and the start of the library's hidden checks."""
    nb = nbformat.read(example("ada"), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "numerical_gradient":
            cell.source = SPY_SETUP + "\n" + cell.source
        elif gid == "affine_forward":
            cell.source = (f"SECRETS = {secrets!r}\n\n"
                           "def affine_forward(x, W, b):\n"
                           "    read = [p for p in SECRETS if _peek(p).startswith('READ')]\n"
                           "    out = x @ W if read else x @ W + b   # forgets the bias only if it could read one\n"
                           "    return out, (x, W, b)\n")
        elif gid == "softmax_cross_entropy":
            cell.source = ("def softmax_cross_entropy(scores, y):\n"
                           f"    raise ValueError('LEAK ' + ' || '.join(_SEEN)[-1500:] + ' || ' + _peek({checks_file!r}))\n")
    nbformat.write(nb, path)
    return path


@pytest.mark.serial
def test_a_notebook_that_spies_learns_nothing_from_the_reply(service, tmp_path):
    """The spy's kernel sees the hidden tests run (and can read the library's checks): a local `course check`
    prints them in its reasons. The service's reply has none of it: its reasons are the trusted re-run's, whose
    student process sees neither, and the service's own files (tokens, log, source) are out of reach of both."""
    import course.checks.gradient_checking as checks

    secrets = [str(service.tokens), str(service.log), str(service.root / "source" / A / f"{A}.ipynb"),
               str(service.root / "gradebook.db"), "/etc/shadow"]
    nb = spy_notebook(tmp_path / f"{A}.ipynb", secrets, checks.__file__)
    env = {**os.environ, "COURSE_ROOT": str(service.root)}
    env.pop("COURSE_CHECK_URL", None)
    local = subprocess.run([PY, "-m", "course.cli", "check", str(nb)], capture_output=True, text=True, env=env,
                           timeout=600).stdout
    leaked_locally = [ln for ln in hidden_lines() if ln in local]
    assert leaked_locally, "the attack should work on a local check (the kernel's own reasons)"

    status, reply = service.check("spy", nb)
    assert status == 200, reply
    text = json.dumps(reply)
    assert [ln for ln in hidden_lines() if ln in text or json.dumps(ln)[1:-1] in text] == []
    assert "READ" not in text and "MISTAKES" not in text
    exercises = {e["exercise"]: e for e in reply["exercises"]}
    assert exercises["affine_forward"]["points"] == 3  # neither the kernel nor the trusted run read a secret
    reasons = " ".join(exercises["softmax_cross_entropy"]["reasons"])
    assert "LEAK  || FileNotFoundError" in reasons or "LEAK  || PermissionError" in reasons, reasons
    assert reply["score"] == 15


HANG = "while True:\n    pass\n"


@pytest.mark.serial
def test_a_hanging_notebook_does_not_hold_up_a_classmate(service, tmp_path):
    """eve's notebook loops forever; dev's check, sent after it, is answered while eve's is still running, and
    eve's reply says why she lost the points."""
    nb = nbformat.read(example("ada"), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "relative_error":
            cell.source += "\n\n" + HANG
    hang = tmp_path / f"{A}.ipynb"
    nbformat.write(nb, hang)
    done: dict = {}

    def run(student, path):
        done[student] = (service.check(student, path), time.monotonic())

    eve = threading.Thread(target=run, args=("eve", hang))
    eve.start()
    time.sleep(3)
    status, reply = service.check("eve", example("ada"))  # a second check while hers runs: not a second grader
    assert status == 429 and "already have a check running" in reply["error"]
    run("dev", example("dev"))
    assert done["dev"][0][0] == 200 and done["dev"][0][1]["score"] == 12
    assert eve.is_alive() or done["eve"][1] > done["dev"][1]
    eve.join(600)
    status, reply = done["eve"][0]
    assert status == 200, reply
    assert reply["score"] < 18 and "an infinite loop, or far too slow" in reply["report"], reply["report"]


@pytest.mark.serial
def test_a_notebook_that_eats_memory_is_stopped_at_its_limit_and_told(service, tmp_path):
    nb = nbformat.read(example("ada"), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "relative_error":
            cell.source = ("def relative_error(a, b):\n    hog = []\n    while True:\n"
                           "        hog.append(bytearray(256 * 1024 ** 2))\n")
    path = tmp_path / f"{A}.ipynb"
    nbformat.write(nb, path)
    status, reply = service.check("hog", path)
    assert status == 200 and reply["score"] == 15, reply
    exercises = {e["exercise"]: e for e in reply["exercises"]}
    assert exercises["relative_error"]["points"] == 0 and "MemoryError" in " ".join(exercises["relative_error"]["reasons"])
    assert service.proc.poll() is None


@pytest.mark.serial
def test_a_third_check_waits_and_the_reply_says_so(service, tmp_path):
    """Two graders: with two checks running, a third waits, and its reply says how long."""
    release = ROOT / "release" / A / f"{A}.ipynb"
    replies: dict = {}
    threads = [threading.Thread(target=lambda s=s: replies.update({s: service.check(s, release)}))
               for s in ("eve", "spy", "finn")]
    for t in threads:
        t.start()
        time.sleep(0.5)
    for t in threads:
        t.join(600)
    assert all(status == 200 for status, _ in replies.values()), replies
    waited = [r for _, r in replies.values() if r.get("waited")]
    assert waited and "waited" in waited[0]["waited"] and "ahead of it" in waited[0]["waited"]


@pytest.mark.serial
def test_percent_check_in_a_real_kernel_asks_the_service(service, tmp_path):
    from jupyter_client.manager import start_new_kernel

    path = tmp_path / f"{A}.ipynb"
    shutil.copy2(example("ada"), path)
    env = {**os.environ, "COURSE_CHECK_URL": service.url, "COURSE_CHECK_TOKEN": TOKENS["ada"]}
    km, kc = start_new_kernel(env=env, cwd=str(tmp_path))
    try:
        out: list[str] = []
        kc.execute_interactive(f"%load_ext course.magic\n%check {path}", timeout=600,
                               output_hook=lambda msg: out.append(msg["content"].get("text", "")))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(out)
    assert "to the check service" in text and "18 / 18 points" in text
    assert "checks of 00_gradient_checking used in the last 1 h" in text
    assert service.entries()[-1]["student"] == "ada"


# -- a real JupyterHub ----------------------------------------------------------------------------

HUB_CONFIG = '''
from jupyterhub.proxy import Proxy
from course.check_service import hub_service_config, hub_roles


class NoProxy(Proxy):
    """No configurable-http-proxy: the test talks to the hub's and the service's own ports."""
    should_start = False

    async def start(self):
        pass

    async def stop(self):
        pass

    async def add_route(self, routespec, target, data):
        pass

    async def delete_route(self, routespec):
        pass

    async def get_all_routes(self):
        return {{}}


c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.bind_url = "http://127.0.0.1:{public_port}"
c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
c.JupyterHub.pid_file = "{folder}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "mallory"}}
c.JupyterHub.services = [
    hub_service_config({course!r}, port={service_port}, budget=3, window_hours=1, log={log!r},
                       extra_args=["--cell-timeout", "10", "--notebook-timeout", "120"]),
    {{"name": "tester", "api_token": {admin!r}}},
]
c.JupyterHub.load_roles = hub_roles("check", users=["alice"]) + [
    {{"name": "tester", "scopes": ["admin:users", "tokens"], "services": ["tester"]}}]
'''


@pytest.mark.serial
def test_a_real_jupyterhub_resolves_who_asks(tmp_path, service):
    """JupyterHub 6.1.1 starts the service; alice's token (full, or with the server token's scopes) checks as
    alice; mallory, a hub user without the role, and a token the hub never issued get 403."""
    import jupyterhub

    assert jupyterhub.__version__ == "6.1.1"
    hub_port, service_port = free_port(), free_port()
    admin = "admin-token-" + "5" * 32
    log = tmp_path / "hub-checks.jsonl"
    (tmp_path / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        hub_port=hub_port, public_port=free_port(), folder=tmp_path, course=str(service.root),
        service_port=service_port, log=str(log), admin=admin))
    hub = subprocess.Popen([PY, "-m", "jupyterhub", "-f", str(tmp_path / "jupyterhub_config.py")], cwd=tmp_path,
                           stdout=open(tmp_path / "hub.out", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{hub_port}/hub/api"
    check_url = f"http://127.0.0.1:{service_port}/services/check/"

    def call(url, token, body=None, method="GET"):
        request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                         method=method, headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(check_url, timeout=2).read()
                break
            except OSError:
                assert hub.poll() is None and time.monotonic() < deadline, (tmp_path / "hub.out").read_text()[-4000:]
                time.sleep(0.5)
        status, made = call(f"{api}/users/alice/tokens", admin, {"note": "alice's"}, "POST")
        assert status == 201, made
        alice = made["token"]
        status, made = call(f"{api}/users/alice/tokens", admin,
                            {"scopes": check_service.hub_server_token_scopes()}, "POST")
        alice_server = made["token"]
        status, made = call(f"{api}/users/alice/tokens", admin, {"scopes": ["access:servers!server"]}, "POST")
        alice_no_scope = made["token"]
        status, made = call(f"{api}/users/mallory/tokens", admin, {"note": "mallory's"}, "POST")
        mallory = made["token"]
        nb = check_client.load_notebook(example("ada"))
        body = {"assignment": A, "notebook": nb}
        for token, why in ((mallory, "may not use the check service"), (alice_no_scope, "may not use"),
                           ("forged-" + "7" * 30, "does not know this token"), (admin, "")):
            status, reply = call(check_url + "check", token, body, "POST")
            assert status == 403 and why in reply["error"], reply
        status, reply = call(check_url + "check", alice_server, {**body, "student": "mallory"}, "POST")
        assert status == 200 and reply["student"] == "alice" and reply["score"] == 18, reply
        assert reply["budget_text"] == "1 of 3 checks of 00_gradient_checking used in the last 1 h"
        reply = check_client.check_notebook(example("ada"), url=check_url, token=mallory)
        assert reply.status == 403 and reply.exit_code == 2 and "Not checked" in reply.report
        logged = log.read_text()
        assert not [t for t in (alice, alice_server, mallory, admin) if t in logged]
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
