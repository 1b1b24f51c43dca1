"""Grading on a Dask cluster: TLS with mutual authentication, one process per job, nothing unpickled back.

A real ``dask scheduler`` and one thread-based ``dask worker`` (three threads, one process) are
started on 127.0.0.1 with the credentials of ``course dask-credentials``, as the README says to.
(a) Without those credentials (plain tcp://, TLS without a certificate, a certificate of another
authority) nobody connects to the scheduler or the worker, so nobody can replace the worker's
grading function; the same attempt with the credentials does reach the worker (the test is not
vacuous). (b) Three honest students graded at once by the worker's threads get exactly their local
grades. (c) A worker that replies with something else than a plain outcome (a pickle that would
run code, a wrong type, another student's outcome) gives that student a reason and runs nothing in
the grading process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course import grade
from course.dask_security import (CredentialsError, DaskCluster, check_scheduler_address, make_credentials,
                                  no_unpickling, scheduler_command, security)
from course.jobs import MAX_OUTCOME_BYTES, Job, Outcome, run_jobs
from course.sandbox import Limits
from tests.conftest import ROOT

distributed = pytest.importorskip("distributed")

A = "00_gradient_checking"
HONEST = {"ada": 18, "cleo": 0, "dev": 12}  # the full solution, the untouched release, a summed loss
LIMITS = Limits(cell_seconds=20, wall_seconds=120, memory_bytes=2 * 1024 ** 3)
# the tests that use the cluster (a scheduler and a worker of their own) are serial; the rest are quick
CANARY = "COURSE_DASK_CANARY"  # the file a hostile pickle appends its process id to


# -- the cluster ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


class Cluster:
    def __init__(self, folder: Path, canary: Path) -> None:
        self.creds = make_credentials(folder / "credentials")
        self.port = free_port()
        self.address = f"tls://127.0.0.1:{self.port}"
        self.canary = canary
        env = {**os.environ, "PYTHONPATH": str(ROOT), CANARY: str(canary)}
        logs = folder / "logs"
        logs.mkdir()
        self.procs = [subprocess.Popen(scheduler_command(self.creds, "127.0.0.1", self.port), cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "wb"))]
        wait_for_port(self.port, self.procs[0])
        # `course dask-worker`, as the README says: one worker process, three threads sharing its environment
        worker = [sys.executable, "-m", "course.cli", "dask-worker", self.address, "--nthreads", "3",
                  "--dask-credentials", str(self.creds.folder)]
        self.procs.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                           stderr=open(logs / "worker.log", "wb")))
        with self.client() as client:
            client.wait_for_workers(1, timeout=120)
            self.worker, info = next(iter(client.scheduler_info()["workers"].items()))
            self.nanny = info["nanny"]  # the worker's supervisor: it can start and stop workers

    def cluster(self) -> DaskCluster:
        return DaskCluster(self.address, self.creds.folder)

    def client(self, **kwargs):
        return distributed.Client(self.address, security=security(self.creds.folder, "client"), timeout="30s",
                                  **kwargs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask-tls")
    c = Cluster(folder, folder / "canary")
    try:
        yield c
    finally:
        c.stop()


# -- (a) nobody without the credentials -------------------------------------------------------

def replace_grading_function() -> str:
    """What an attacker would run on the worker: grade every submission 18/18 (the issue's attack)."""
    import course.jobs
    course.jobs.run_job = lambda job, limits=None: course.jobs.Outcome(job.student, True, grades={"x": 18.0})
    return "replaced"


@pytest.mark.serial
@pytest.mark.slow
def test_the_credentials_are_private(cluster):
    folder = cluster.creds.folder
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {
        name: "0o600" for name in ("ca.pem", "scheduler.pem", "scheduler-key.pem", "worker.pem", "worker-key.pem",
                                   "client.pem", "client-key.pem")}
    assert not any("PRIVATE KEY" in p.read_text() for p in [cluster.creds.ca])  # the authority's key is not kept
    with pytest.raises(CredentialsError, match="nothing was overwritten"):
        make_credentials(folder)


@pytest.mark.serial
@pytest.mark.slow
def test_plain_tcp_cannot_connect(cluster):
    with pytest.raises((OSError, TimeoutError)):
        with distributed.Client(f"tcp://127.0.0.1:{cluster.port}", timeout="5s") as client:
            client.run(replace_grading_function)


@pytest.mark.serial
@pytest.mark.slow
def test_tls_without_a_certificate_is_refused(cluster):
    """A raw TLS handshake that trusts the cluster's CA but shows no certificate: the server refuses it."""
    ctx = ssl.create_default_context(cafile=str(cluster.creds.ca))
    ctx.check_hostname = False
    for address in (f"tls://127.0.0.1:{cluster.port}", cluster.worker, cluster.nanny):
        host, port = address.removeprefix("tls://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                with ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"\0" * 64)
                    if not tls.recv(1):  # TLS 1.3: the refusal arrives with the first read
                        raise ConnectionError("closed by the server")


@pytest.mark.serial
@pytest.mark.slow
def test_a_certificate_of_another_authority_cannot_connect_or_run_code(cluster, tmp_path):
    other = make_credentials(tmp_path / "other")
    with pytest.raises((OSError, TimeoutError)):
        with distributed.Client(cluster.address, security=security(other.folder, "client"), timeout="5s") as client:
            client.run(replace_grading_function)
    for address in (cluster.worker, cluster.nanny):  # nor straight to the worker or its nanny, past the scheduler
        with pytest.raises((OSError, TimeoutError)):
            asyncio.run(talk_to(address, security(other.folder, "client")))


async def talk_to(address: str, sec) -> object:
    """Connect to ``address`` as a client with ``sec`` and ask it who it is."""
    comm = await distributed.comm.connect(address, timeout=5, **sec.get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


@pytest.mark.serial
@pytest.mark.slow
def test_with_the_credentials_the_same_call_reaches_the_worker(cluster):
    """The control: the refusals above are the credentials', not a cluster that runs nothing."""
    with cluster.client() as client:
        assert list(client.run(os.getpid).values())[0] != os.getpid()
    assert asyncio.run(talk_to(cluster.worker, security(cluster.creds.folder, "client")))["type"] == "Worker"


def test_credentials_are_refused_where_the_sandbox_shows_them(tmp_path):
    from course.sandbox import LIBRARY

    with pytest.raises(CredentialsError, match="shows to the students' code"):
        make_credentials(LIBRARY[0] / "dask-credentials")
    assert not (LIBRARY[0] / "dask-credentials").exists()
    creds = make_credentials(tmp_path / "c")
    creds.key("client").chmod(0o644)
    with pytest.raises(CredentialsError, match="can be read by other users"):
        security(creds.folder, "client")


def course(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.slow  # five runs of the command
def test_the_commands_make_credentials_and_refuse_what_is_not_authenticated(tmp_path):
    with pytest.raises(CredentialsError, match="not authenticated"):
        check_scheduler_address("tcp://127.0.0.1:8786")
    made = course("dask-credentials", str(tmp_path / "c"), cwd=tmp_path)
    assert made.returncode == 0 and f"--tls-cert {tmp_path / 'c' / 'scheduler.pem'}" in made.stdout
    again = course("dask-credentials", str(tmp_path / "c"), cwd=tmp_path)
    assert again.returncode == 2 and "nothing was overwritten" in again.stderr
    tcp = course("grade", A, "--scheduler", "tcp://127.0.0.1:8786", "--dask-credentials", str(tmp_path / "c"),
                 "--allow-unprotected", cwd=tmp_path)
    assert tcp.returncode == 2 and "refusing to grade on 'tcp://127.0.0.1:8786'" in tcp.stderr
    bare = course("grade", A, "--scheduler", "tls://127.0.0.1:8786", "--allow-unprotected", cwd=tmp_path)
    assert bare.returncode == 2 and "go together" in bare.stderr
    worker = course("dask-worker", "tcp://127.0.0.1:8786", "--dask-credentials", str(tmp_path / "c"), cwd=tmp_path)
    assert worker.returncode == 2 and "not authenticated" in worker.stderr


# -- (b) a thread-based worker grades honest students correctly --------------------------------

@pytest.fixture(scope="module")
def honest_class(tmp_path_factory, shared_build, cluster):
    import shutil

    root = tmp_path_factory.mktemp("dask-class")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    shared_build.release_into(root, A)
    students = grade.collect_folder(root, A, ROOT / "examples" / "class_00").students
    honest = sorted(HONEST)
    local = grade.autograde(root, A, honest, workers=2, progress=False, limits=LIMITS)
    local_scores = cell_scores(root, honest, local)
    start = time.perf_counter()
    problems = grade.autograde(root, A, students, scheduler=cluster.cluster(), progress=False, limits=LIMITS)
    seconds = time.perf_counter() - start
    return root, students, problems, local_scores, cell_scores(root, students, problems), seconds


def cell_scores(root, students, problems):
    return {r.student_id: {c.grade_id: c.score for c in r.cells} for r in grade.results(root, A, students, problems)}


@pytest.mark.serial
@pytest.mark.slow
def test_a_thread_based_worker_grades_honest_students_as_local_grading_does(honest_class):
    root, students, problems, local, remote, seconds = honest_class
    print(f"\n{len(students)} submissions on the TLS cluster (one worker, three threads) in {seconds:.1f} s")
    assert {sid: sum(remote[sid].values()) for sid in HONEST} == HONEST
    assert {sid: remote[sid] for sid in HONEST} == local
    assert {sid: sum(s.values()) for sid, s in remote.items()} == {"ada": 18, "ben": 9, "cleo": 0, "dev": 12,
                                                                   "eve": 0, "finn": 18}
    assert "not a valid notebook" in problems["eve"] and set(problems) == {"eve"}
    assert (root / "feedback" / "ada" / A / f"{A}.html").is_file()


# -- (c) a hostile worker's reply -------------------------------------------------------------

class RunsCode:
    """Unpickling this appends the unpickling process's id to the canary file."""

    def __reduce__(self):
        return (os.system, (f"echo $PPID >> {os.environ.get(CANARY, '/dev/null')}",))


class RunsCodeError(Exception):
    def __reduce__(self):
        return (os.system, (f"echo $PPID >> {os.environ.get(CANARY, '/dev/null')}",))


def reply_object(job, limits):
    return RunsCode()


def reply_pickle(job, limits):
    import pickle
    return pickle.dumps(RunsCode())


def reply_error(job, limits):
    raise RunsCodeError("boom")


def reply_warning(job, limits):
    distributed.warn(RunsCode())
    return Outcome(job.student, True, grades={"x": 18.0}).to_plain()  # the warning is the attack


def reply_dict(job, limits):
    return {"student": job.student, "ok": True}


def reply_other_student(job, limits):
    return Outcome("ada", True, grades={"x": 18.0}).to_plain()


HOSTILE = {"mallory-object": (reply_object, "could not be fetched"),
           "mallory-pickle": (reply_pickle, "not JSON"),
           "mallory-error": (reply_error, "status 'error'"),
           "mallory-warning": (reply_warning, None),
           "mallory-dict": (reply_dict, "a dict instead of bytes"),
           "mallory-other": (reply_other_student, "another student")}


@pytest.mark.serial
@pytest.mark.slow
def test_a_hostile_worker_reply_gives_a_reason_and_runs_nothing_here(cluster, monkeypatch):
    import course.jobs

    monkeypatch.setattr(course.jobs, "grade_on_worker", dispatch_hostile)
    jobs = [Job(A, sid, b"", {}, b"", {}) for sid in HOSTILE]
    outcomes = {o.student: o for o in run_jobs(jobs, scheduler=cluster.cluster(), progress=False, limits=LIMITS)}
    assert set(outcomes) == set(HOSTILE)
    for sid, (_, reason) in HOSTILE.items():
        if reason is None:
            continue
        assert not outcomes[sid].ok and reason in outcomes[sid].problem, (sid, outcomes[sid].problem)
    ran_in = cluster.canary.read_text().split() if cluster.canary.exists() else []
    assert str(os.getpid()) not in ran_in  # some ran on the worker (distributed re-loads its errors there)


def dispatch_hostile(job, limits):
    """Pickled by reference: on the worker, each job runs its student's reply."""
    return HOSTILE[job.student][0](job, limits)


def test_no_unpickling_refuses_code_and_loads_plain_data(tmp_path, monkeypatch):
    import pickle

    from distributed.protocol import pickle as dask_pickle

    monkeypatch.setenv(CANARY, str(tmp_path / "canary"))
    with no_unpickling():
        assert dask_pickle.loads(pickle.dumps({"a": [1, 2.0, b"x", ("t",)], "s": {None}}))["a"][2] == b"x"
        for payload in (RunsCode(), RunsCodeError("x"), Outcome("x", True)):
            with pytest.raises(pickle.UnpicklingError):
                dask_pickle.loads(pickle.dumps(payload))
            with pytest.raises(pickle.UnpicklingError):
                distributed.client.pickle.loads(pickle.dumps(payload))
    assert not (tmp_path / "canary").exists()
    assert dask_pickle.loads(pickle.dumps(Outcome("x", True))).ok  # restored afterwards


# -- Outcome.from_plain on hostile replies ------------------------------------------------------

def good() -> dict:
    return json.loads(Outcome("bob", True, timestamp="2026-01-01T10:00:00", grades={"g": 2.0, "h": None},
                              notebook="nb", autograded={"nb.ipynb": b"{}"}).to_plain())


def plain(**changes) -> bytes:
    return json.dumps({**good(), **changes}).encode()


def test_an_outcome_round_trips_as_plain_data():
    outcome = Outcome("bob", True, timestamp="2026-01-01T10:00:00", grades={"g": 2.0, "h": None}, notebook="nb",
                      autograded={"nb.ipynb": b"\0\xffbinary"}, feedback={"nb.html": b"<p>"}, trusted={"g": ""},
                      overridden=["h"], copies=["g"], seconds=1.5, peak_rss=10, log="log", comments={"c": None})
    assert Outcome.from_plain(outcome.to_plain(), "bob") == outcome


@pytest.mark.parametrize("data, reason", [
    (b"\x80\x04\x95" + b"\0" * 20, "not JSON"),                                # a pickle
    ("{}", "instead of bytes"),                                                # a str
    (b"[1, 2]", "not an outcome"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),                             # nested past the recursion limit
    (plain(student="ada"), "another student"),
    (plain(extra=1), "not an outcome"),
    (plain(ok="yes"), "ok is not valid"),
    (plain(grades={"g": "18"}), "grades is not valid"),
    (plain(grades={"g": True}), "grades is not valid"),
    (plain(grades=[18]), "grades is not valid"),
    (plain(grades={"g": 10 ** 400}), "grades is not valid"),                  # past a float's range
    (plain(seconds=-10 ** 400), "seconds is not valid"),
    (json.dumps({**good(), "grades": {"g": float("nan")}}).encode(), "not JSON"),
    (json.dumps({**good(), "grades": {"g": float("inf")}}).encode(), "not JSON"),
    (plain(timestamp="yesterday"), "timestamp is not valid"),
    (plain(autograded={"../../gradebook.db": "AAAA"}), "autograded is not valid"),
    (plain(autograded={"/etc/passwd": "AAAA"}), "autograded is not valid"),
    (plain(autograded={"a": "AAAA", "a/b": "AAAA"}), "autograded is not valid"),  # a file where a folder goes
    (plain(autograded={"a/": "AAAA", "a/b": "AAAA"}), "autograded is not valid"),
    (plain(autograded={".": "AAAA"}), "autograded is not valid"),
    (plain(feedback={"x.html": "not base64!"}), "feedback is not valid"),
    (plain(feedback={"x.html": 5}), "feedback is not valid"),
    (plain(peak_rss=-1), "peak_rss is not valid"),
    (plain(overridden="g"), "overridden is not valid"),
    (b"\xff\xfe", "not JSON"),
])
def test_hostile_plain_replies_are_refused(data, reason):
    with pytest.raises(ValueError, match=reason):
        Outcome.from_plain(data, "bob")


def test_an_oversized_reply_is_refused():
    with pytest.raises(ValueError, match="larger than"):
        Outcome.from_plain(b" " * (MAX_OUTCOME_BYTES + 1), "bob")


@pytest.mark.slow  # builds the release
def test_an_outcome_naming_cells_the_gradebook_lacks_sets_that_student_aside(released_course, monkeypatch):
    """Well-typed but not of this assignment (a hostile worker's reply): a reason, and the batch goes on."""
    root = released_course
    grade.collect_folder(root, A, root / "examples" / "class_00")
    forged = {"ada": Outcome("ada", True, grades={"not-a-cell": 18.0}, notebook=A, autograded={f"{A}.ipynb": b"{}"}),
              "finn": Outcome("finn", False, problem="not graded: stand-in for an honest failure")}
    monkeypatch.setattr(grade, "run_jobs", lambda jobs, **kw: iter(forged[j.student] for j in jobs))
    problems = grade.autograde(root, A, ["ada", "finn"], progress=False)
    assert "could not be recorded" in problems["ada"] and "stand-in" in problems["finn"]
    assert {r.student_id: r.score for r in grade.results(root, A, ["ada", "finn"], problems)} == {"ada": 0, "finn": 0}
    assert not (root / "autograded" / "ada" / A).exists()
