"""A graded class on JupyterHub on one machine: real Unix users, and students who never hold the answers.

``course classroom up`` (``make classroom``, as root) sets up and starts:

- **JupyterHub** (``jupyterhub==6.1.1``, from the course's virtual environment) on ``127.0.0.1``, its proxy
  configurable-http-proxy 5.3.0 from the npm registry (installed once into ``.classroom/node_modules``);
- **an instructor and three demo students** (:data:`INSTRUCTOR`, :data:`STUDENTS`) as real Unix users, each with
  a 0700 home, logging in with a password of their own (:class:`DemoPasswordAuthenticator`, printed at start-up);
- **LocalProcessSpawner**: each user's Jupyter server runs as that Unix user. A student's server runs in a view
  of the machine made with bubblewrap (:func:`student_view`): the system (``/usr``, ``/etc``), the student
  environment, the exchange and their own home, and nothing else: no repository, no ``/root``, no
  ``/work``, no course folder, no classmate's home, whatever their permissions say;
- **the student environment** (``<state>/envs/student``): the course's virtual environment hard-linked (same
  files, no copy: torch is not installed again) without ``course`` and ``nnlab``, plus the *student edition* of
  the library at the class's stage (:func:`build_student_edition`: no reference of the notebooks still to do,
  no hidden tests, no mistake catalog, no ``source/``);
- **the instructor's course** (``<state>/course``, the instructor's 0700 folder): ``nbgrader_config.py`` and
  ``source/``; gradebook, releases, submissions and feedback land there. The instructor's server runs there,
  with the full library (``<state>/envs/instructor``, readable by the instructor only) and the formgrader
  behind ``course.formgrader_safety`` (as ``make lab``);
- **nbgrader's exchange** (``<state>/exchange``, outside the repository): nbgrader's modes, tightened
  (:func:`ensure_exchange`); a student's submission is a 0700 folder of their own (:class:`PrivateSubmit`,
  their nbgrader's submit), collected as root through the ingest gate (``course collect --exchange``, the
  folder's owner checked against the student id = hub user = Unix user);
- **the check service** as a hub service, when the course has one (``course.check_service``).

The formgrader runs in the instructor's own server, not as a hub service (nbgrader's multi-course demo runs one
server per course as a service): the instructor's server already is the course's Jupyter with the course folder
as its root, where ``course.formgrader_safety`` (escaping, CSP, Autograde off) is loaded, and a service would
need a Unix account of its own with the instructor's access to the course. It is opened as a page of its own
(``/user/instructor/formgrader``): JupyterHub >= 4.1 serves single-user servers with ``frame-ancestors 'none'``,
which refuses the formgrader in an iframe (nbgrader#1870; nbgrader#1947 keeps it so, for security).

``course classroom down`` stops the hub, its proxy, every user's server and the check service;
``course classroom status`` says what runs.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode

COURSE_ID = "nn-training"  # as in nbgrader_config.py
INSTRUCTOR = "instructor"
STUDENTS = ("ada", "ben", "cleo")
INSTRUCTORS_GROUP = "nn-instructors"  # may read the instructor environment (the full library)
STATE = Path("/srv/nn-classroom")
DEFAULT_PORT = 8000
DEFAULT_STAGE = "00"
CHP_PACKAGE = "configurable-http-proxy@5.3.0"
CHP_VERSION = "5.3.0"
USER_PYTHON = Path("/usr/bin/python3.11")  # the course's venv may sit under /root, which users cannot enter
SERVICE_ADMIN = "classroom-admin"  # the hub API token `course classroom status|down` use

ROOT_HELP = ("`course classroom` creates Unix users and starts servers as them: run it as root "
             "(sudo make classroom)")


class NotRoot(SystemExit):
    pass


# -- where everything lives -------------------------------------------------------------------------

@dataclass
class Layout:
    """The classroom's folders under one state folder (root-owned, outside the repository)."""

    state: Path = STATE
    port: int = DEFAULT_PORT
    check_budget: int = 10  # %check: checks per student and assignment in the window (course check-service)
    check_window_hours: float = 24.0

    @property
    def exchange(self) -> Path:
        return self.state / "exchange"

    @property
    def course(self) -> Path:
        return self.state / "course"

    @property
    def hub(self) -> Path:  # 0700 root: the hub's database, secrets, passwords, logs
        return self.state / "hub"

    @property
    def envs(self) -> Path:
        return self.state / "envs"

    @property
    def student_env(self) -> Path:
        return self.envs / "student"

    @property
    def instructor_env(self) -> Path:
        return self.envs / "instructor"

    @property
    def check_scratch(self) -> Path:
        return self.hub / "check-scratch"

    @property
    def passwords(self) -> Path:
        return self.hub / "passwords.json"

    @property
    def admin_token(self) -> Path:
        return self.hub / "admin-token"

    @property
    def pid_file(self) -> Path:
        return self.hub / "jupyterhub.pid"

    @property
    def log(self) -> Path:
        return self.hub / "jupyterhub.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub_port(self) -> int:
        return self.port + 1

    @property
    def proxy_api_port(self) -> int:
        return self.port + 2

    @property
    def check_port(self) -> int:
        return self.port + 3

    def to_json(self) -> str:
        return json.dumps({"state": str(self.state), "port": self.port, "check_budget": self.check_budget,
                           "check_window_hours": self.check_window_hours})

    @classmethod
    def from_json(cls, text: str) -> Layout:
        d = json.loads(text)
        return cls(Path(d["state"]), int(d["port"]), int(d.get("check_budget", 10)),
                   float(d.get("check_window_hours", 24.0)))


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def require_root() -> None:
    if os.geteuid() != 0:
        print(ROOT_HELP, file=sys.stderr)
        raise NotRoot(2)


# -- users ------------------------------------------------------------------------------------------

def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)
        return grp.getgrnam(name).gr_gid


def ensure_user(name: str, groups: tuple[str, ...] = ()) -> pwd.struct_passwd:
    """A Unix user with a 0700 home (created once; run again, it changes nothing but the home's mode)."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name], check=True)
        user = pwd.getpwnam(name)
    for group in groups:
        if name not in grp.getgrnam(group).gr_mem:
            subprocess.run(["usermod", "--append", "--groups", group, name], check=True)
    home = Path(user.pw_dir)
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, user.pw_uid, user.pw_gid)
    home.chmod(0o700)  # useradd's HOME_MODE may be 0755: a classmate would read this student's notebooks
    return user


def ensure_users() -> None:
    ensure_group(INSTRUCTORS_GROUP)
    ensure_user(INSTRUCTOR, groups=(INSTRUCTORS_GROUP,))
    for name in STUDENTS:
        ensure_user(name)


def ensure_passwords(layout: Layout) -> dict[str, str]:
    """One random password per demo user, kept in the hub's private folder (the same at every start)."""
    if layout.passwords.exists():
        known = json.loads(layout.passwords.read_text())
    else:
        known = {}
    for name in (INSTRUCTOR, *STUDENTS):
        known.setdefault(name, f"{name}-{secrets.token_urlsafe(9)}")
    _write_private(layout.passwords, json.dumps(known, indent=1))
    return known


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


class DemoPasswordAuthenticator(Authenticator):
    """A demo log-in: each user has a password of their own, from a root-only file.

    JupyterHub 6's ``SharedPasswordAuthenticator`` (which replaces ``DummyAuthenticator``'s password) gives
    every user one password: a student who knows it logs in as the instructor or as a classmate. Here each
    demo user's password is their own. A real class uses a real authenticator (README: PAM, OAuth, LTI).
    """

    password_file = Unicode(config=True, help="JSON file {user: password}, readable by root only")

    async def authenticate(self, handler, data):
        import hmac

        known = json.loads(Path(self.password_file).read_text())
        name, given = data.get("username", ""), data.get("password", "")
        expected = known.get(name)
        if expected and hmac.compare_digest(expected.encode(), given.encode()):
            return name
        return None


# -- the proxy --------------------------------------------------------------------------------------

def proxy_command(repo: Path) -> Path:
    return repo / ".classroom" / "node_modules" / ".bin" / "configurable-http-proxy"


def ensure_proxy(repo: Path) -> Path:
    """configurable-http-proxy from the npm registry into ``.classroom/`` (git-ignored), once."""
    chp = proxy_command(repo)
    package = repo / ".classroom" / "node_modules" / "configurable-http-proxy" / "package.json"
    if chp.exists() and package.exists() and json.loads(package.read_text()).get("version") == CHP_VERSION:
        return chp
    if not shutil.which("npm") or not shutil.which("node"):
        raise SystemExit("node and npm are needed for JupyterHub's proxy (configurable-http-proxy): "
                         "apt-get install nodejs npm")
    (repo / ".classroom").mkdir(exist_ok=True)
    print(f"Installing {CHP_PACKAGE} from the npm registry into .classroom/ ...", flush=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix",
                    str(repo / ".classroom"), CHP_PACKAGE], check=True)
    return chp


# -- the environments -------------------------------------------------------------------------------

def _site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


COURSE_DISTRIBUTION = "nn_training_course"  # the course's own editable install (course and nnlab)


def _is_course_install(name: str) -> bool:
    return (name.startswith(("__editable__.", "__editable___")) and COURSE_DISTRIBUTION in name) or \
        name.startswith(COURSE_DISTRIBUTION + "-") or name in ("course", "nnlab")


def _link_tree(src: Path, dest: Path, skip=lambda name: False) -> int:
    """Hard-link every file of ``src`` into ``dest`` (copies where a link is impossible); returns the count."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if not skip(d)]
            filenames = [f for f in filenames if not skip(f)]
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            s, d = Path(dirpath) / name, dest / rel / name
            if s.is_symlink():
                os.symlink(os.readlink(s), d)
                continue
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)
            count += 1
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                os.symlink(os.readlink(Path(dirpath) / name), dest / rel / name)
    return count


def make_environment(main_venv: Path, dest: Path, packages: dict[str, Path], mode: int = 0o755,
                     group: int = 0) -> Path:
    """A virtual environment at ``dest`` with what ``main_venv`` installed, hard-linked, except the course's
    own packages; ``packages`` (name -> folder) are copied into its site-packages instead.

    Its interpreter is the system's Python (same version): the course's venv may point at one under
    ``/root``. Console scripts are rewritten to start this environment's interpreter.
    """
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.chown(tmp, 0, group)
    tmp.chmod(mode)
    (tmp / "bin").mkdir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = USER_PYTHON if USER_PYTHON.exists() else Path(shutil.which(f"python{version}") or sys.executable)
    (tmp / "pyvenv.cfg").write_text(f"home = {python.parent}\ninclude-system-site-packages = false\n"
                                    f"version = {version}\n")
    for name in ("python", "python3", f"python{version}"):
        os.symlink(python, tmp / "bin" / name)
    site = _site_packages(tmp)
    _link_tree(_site_packages(main_venv), site, skip=_is_course_install)
    for name, folder in packages.items():
        shutil.copytree(folder, site / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for part in ("share", "etc"):
        if (main_venv / part).is_dir():
            _link_tree(main_venv / part, tmp / part)
    # console scripts: same code, this interpreter
    shebang = f"#!{main_venv}/bin/python".encode()
    for script in (main_venv / "bin").iterdir():
        if script.name.startswith("python") or script.is_dir():
            continue
        try:
            data = script.read_bytes()
        except OSError:
            continue
        first, _, rest = data.partition(b"\n")
        if first.startswith(shebang) or first.startswith(f"#!{main_venv.resolve()}/bin/python".encode()):
            (tmp / "bin" / script.name).write_bytes(f"#!{tmp.with_name(dest.name)}/bin/python\n".encode() + rest)
            (tmp / "bin" / script.name).chmod(0o755)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _stage_number(stage: str | int) -> str:
    text = str(stage)
    return f"{int(text[:2]) if text[:2].isdigit() else int(text):02d}"


def build_student_edition(root: Path, stage: str | int, out: Path) -> Path:
    """The student edition at ``stage`` (``course.student_edition.build``), in a fresh folder ``out``."""
    from course.student_edition import build

    shutil.rmtree(out, ignore_errors=True)  # build() writes into an empty folder only
    return build(root, stage, out)


def edition_packages(tree: Path) -> dict[str, Path]:
    """The importable packages of a built student edition (``nnlab``, ``course``), wherever it put them."""
    found: dict[str, Path] = {}
    for name in ("nnlab", "course"):
        for base in (tree / "src", tree):
            if (base / name / "__init__.py").exists():
                found[name] = base / name
                break
    missing = {"nnlab", "course"} - set(found)
    if missing:
        raise SystemExit(f"the student edition at {tree} has no {', '.join(sorted(missing))} package")
    return found


PRIVATE_SUBMIT = '''"""nbgrader's submit, with the submission private to its author (the classroom's exchange)."""
import os

from nbgrader.exchange.default.submit import ExchangeSubmit


class PrivateSubmit(ExchangeSubmit):
    """nbgrader makes each submission folder 0777 and its files 0644, "hidden by the timestamp": a classmate
    who learns the name reads or replaces it. Here the folder is 0700 and its files 0600: the instructor
    collects as root, reading as the folder's owner (course collect --exchange)."""

    def copy_files(self):
        super().copy_files()
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        for dirpath, dirnames, filenames in os.walk(dest):
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o600)
            os.chmod(dirpath, 0o700)
'''


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()  # a hard link shared with the course's venv: never written through
    path.write_text(json.dumps(data, indent=1) + "\n")


def configure_student_env(layout: Layout) -> None:
    """The student's Jupyter: nbgrader's assignment list and validate on (no formgrader), no terminal, the
    exchange and course id preset, submissions private."""
    env = layout.student_env
    site = _site_packages(env)
    (site / "nn_classroom_exchange.py").write_text(PRIVATE_SUBMIT)
    etc = env / "etc" / "jupyter"
    _write_json(etc / "jupyter_server_config.d" / "zz-nn-classroom.json", {"ServerApp": {
        "jpserver_extensions": {"nbgrader.server_extensions.formgrader": False,
                                "course.formgrader_safety": False,
                                "jupyter_server_terminals": False, "jupyter_lsp": False},
        "terminals_enabled": False}})
    _write_json(etc / "nbconfig" / "tree.d" / "zz-nn-classroom.json", {})
    nbgrader_config = etc / "nbgrader_config.py"
    if nbgrader_config.exists():
        nbgrader_config.unlink()
    nbgrader_config.write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.Exchange.root = {str(layout.exchange)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        "c.ExchangeFactory.submit = 'nn_classroom_exchange.PrivateSubmit'\n")
    _lab_overrides(env)
    for plugin in ("formgrader", "create-assignment"):  # the instructor's menus: nothing for a student there
        _disable_labextension(env, f"@jupyter/nbgrader:{plugin}")


def _disable_labextension(env: Path, plugin: str) -> None:
    settings = env / "etc" / "jupyter" / "labconfig" / "page_config.json"
    data = json.loads(settings.read_text()) if settings.exists() else {}
    data.setdefault("disabledExtensions", {})[plugin] = True
    _write_json(settings, data)


def _lab_overrides(env: Path) -> None:
    """JupyterLab's defaults for the class: no news feed (it would try the internet, and ask every user)."""
    _write_json(env / "share" / "jupyter" / "lab" / "settings" / "overrides.json",
                {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}})


def configure_instructor_env(layout: Layout) -> None:
    """The instructor's Jupyter: as ``make lab`` (the formgrader behind course.formgrader_safety, no terminal)."""
    _lab_overrides(layout.instructor_env)
    etc = layout.instructor_env / "etc" / "jupyter"
    _write_json(etc / "jupyter_server_config.d" / "zz-nn-classroom.json", {"ServerApp": {
        "jpserver_extensions": {"course.formgrader_safety": True,
                                "nbgrader.server_extensions.formgrader": False,
                                "nbgrader.server_extensions.assignment_list": True,
                                "nbgrader.server_extensions.course_list": True,
                                "nbgrader.server_extensions.validate_assignment": True,
                                "jupyter_server_terminals": False, "jupyter_lsp": False},
        "terminals_enabled": False}})


def ensure_environments(layout: Layout, repo: Path, stage: str | int) -> None:
    main_venv = Path(sys.prefix)
    edition = build_student_edition(repo, stage, layout.envs / "student-edition")
    make_environment(main_venv, layout.student_env, edition_packages(edition))
    configure_student_env(layout)
    instructors = grp.getgrnam(INSTRUCTORS_GROUP).gr_gid
    make_environment(main_venv, layout.instructor_env, {"course": repo / "course", "nnlab": repo / "lib" / "nnlab"},
                     mode=0o750, group=instructors)
    configure_instructor_env(layout)
    (layout.envs / "stage").write_text(_stage_number(stage) + "\n")


def _env_is_current(layout: Layout, repo: Path, stage: str | int) -> bool:
    """The environments were built from this repository's course code and this stage (skip the rebuild)."""
    stamp = layout.envs / "built-from.json"
    return stamp.exists() and json.loads(stamp.read_text()) == _env_fingerprint(repo, stage)


def _env_fingerprint(repo: Path, stage: str | int) -> dict:
    newest = max((p.stat().st_mtime for part in ("course", "lib/nnlab", "source")
                  for p in (repo / part).rglob("*") if p.is_file() and "__pycache__" not in p.parts), default=0)
    return {"repo": str(repo), "stage": _stage_number(stage), "newest": newest, "python": sys.prefix,
            "requirements": (repo / "requirements.txt").stat().st_mtime}


# -- the exchange and the instructor's course -------------------------------------------------------

def ensure_exchange(layout: Layout) -> None:
    """nbgrader's exchange, as nbgrader's release would make it, with its holes closed:

    - the root: root-owned 1777 (nbgrader insists on 777; the sticky bit stops a student from renaming or
      removing what another made there);
    - ``<course>/``, ``outbound/``: the instructor's, 0755 (releases are for everybody to fetch);
    - ``inbound/``: the instructor's, 3733: anyone may hand in, nobody may list (a submission's name is not
      found by reading the folder), and the sticky bit stops a student from renaming or removing a classmate's;
    - ``feedback/``: 0711 (``course release-feedback``: each student finds their file by its hash).
    """
    teacher = pwd.getpwnam(INSTRUCTOR)
    layout.exchange.mkdir(parents=True, exist_ok=True)
    os.chown(layout.exchange, 0, 0)
    layout.exchange.chmod(0o1777)
    course = layout.exchange / COURSE_ID
    for path, mode in ((course, 0o755), (course / "outbound", 0o755), (course / "inbound", 0o3733)):
        path.mkdir(exist_ok=True)
        os.chown(path, teacher.pw_uid, teacher.pw_gid)
        path.chmod(mode)
    feedback = course / "feedback"
    feedback.mkdir(exist_ok=True)
    os.chown(feedback, 0, 0)
    feedback.chmod(0o711)


def ensure_course(layout: Layout, repo: Path) -> None:
    """The instructor's course: a 0700 folder of theirs with the course's nbgrader set-up and ``source/``."""
    teacher = pwd.getpwnam(INSTRUCTOR)
    course = layout.course
    course.mkdir(parents=True, exist_ok=True)
    config = (repo / "nbgrader_config.py").read_text()
    config += ("\n# The classroom's exchange (course classroom up): outside the repository, shared by the hub's users.\n"
               f"c.Exchange.root = {str(layout.exchange)!r}\n")
    (course / "nbgrader_config.py").write_text(config)
    if not (course / "source").exists():
        shutil.copytree(repo / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, dirnames, filenames in os.walk(course):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), teacher.pw_uid, teacher.pw_gid)
    os.chown(course, teacher.pw_uid, teacher.pw_gid)
    course.chmod(0o700)


# -- the student's view of the machine --------------------------------------------------------------

def student_view(layout: Layout, home: str) -> list[str]:
    """bubblewrap's arguments for a student's server: the system, the student environment, the exchange and
    their home; a private /tmp; its own process tree, killed with it. Nothing else of the machine exists there
    (the repository, /root, /work, other homes, the instructor's course and environment)."""
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--new-session",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
             "--ro-bind", str(layout.student_env), str(layout.student_env),
             "--bind", str(layout.exchange), str(layout.exchange),
             "--bind", home, home, "--chdir", home, "--"]
    return args


# -- the hub's configuration ------------------------------------------------------------------------

def check_service_entry(layout: Layout) -> tuple[list[dict], list[dict], list[str]]:
    """The check service as a hub service (``course.check_service.hub_service_config``, run by the hub as root
    on the instructor's course, grading in the sandbox), the roles that let every user reach it and the
    scopes of a server's token (a kernel's ``JUPYTERHUB_API_TOKEN`` must be accepted); nothing where the course
    has no check service."""
    try:
        from course.check_service import hub_roles, hub_server_token_scopes, hub_service_config
    except ImportError:
        return [], [], []
    # its scratch in the hub's private folder, not the machine's shared /tmp (where anyone's clean-up reaches)
    entry = hub_service_config(layout.course, port=layout.check_port, budget=layout.check_budget,
                               window_hours=layout.check_window_hours, log=layout.hub / "check-service.jsonl",
                               python=sys.executable, environment={"TMPDIR": str(layout.check_scratch)})
    return [entry], hub_roles(entry["name"], users=list(STUDENTS)), hub_server_token_scopes(entry["name"])


def configure(c, layout: Layout) -> None:
    """The hub's whole configuration (``<state>/hub/jupyterhub_config.py`` calls this)."""
    repo = repo_root()
    c.JupyterHub.bind_url = layout.url
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = layout.hub_port
    c.JupyterHub.db_url = f"sqlite:///{layout.hub / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(layout.hub / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(layout.pid_file)
    c.JupyterHub.cleanup_servers = True  # the hub's stop stops every user's server
    c.JupyterHub.cleanup_proxy = True
    c.ConfigurableHTTPProxy.command = [str(proxy_command(repo))]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{layout.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(layout.hub / "proxy.pid")

    c.JupyterHub.authenticator_class = DemoPasswordAuthenticator
    c.DemoPasswordAuthenticator.password_file = str(layout.passwords)
    c.Authenticator.allowed_users = {INSTRUCTOR, *STUDENTS}

    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    c.Spawner.env_keep = ["LANG", "LC_ALL"]  # not the hub's PATH, VIRTUAL_ENV, PYTHONPATH (root's)
    c.Spawner.pre_spawn_hook = lambda spawner: _prepare_spawn(spawner, layout)

    services, roles, token_scopes = check_service_entry(layout)
    if token_scopes:
        c.Spawner.server_token_scopes = token_scopes
    admin_token = layout.admin_token.read_text().strip() if layout.admin_token.exists() else None
    if admin_token:
        services.append({"name": SERVICE_ADMIN, "api_token": admin_token})
        roles.append({"name": SERVICE_ADMIN, "services": [SERVICE_ADMIN],
                      "scopes": ["list:users", "read:users", "admin:servers", "read:servers"]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def _prepare_spawn(spawner, layout: Layout) -> None:
    """Each user's server: the instructor in their course with the full library; a student in their view."""
    name = spawner.user.name
    home = pwd.getpwnam(name).pw_dir
    services = check_service_entry(layout)[0]
    env = layout.instructor_env if name == INSTRUCTOR else layout.student_env
    spawner.environment = {"PATH": f"{env}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": home,
                           "SHELL": "/bin/bash", "MPLBACKEND": "Agg"}
    if services and name != INSTRUCTOR:  # the instructor checks with the full library, locally
        spawner.environment["COURSE_CHECK_URL"] = f"{layout.url}/services/{services[0]['name']}/"
    singleuser = [f"{env}/bin/jupyterhub-singleuser"]
    if name == INSTRUCTOR:
        # in the course folder (LocalProcessSpawner starts in the home): the formgrader reads nbgrader_config.py there
        spawner.cmd = ["/usr/bin/env", f"--chdir={layout.course}", *singleuser]
        spawner.notebook_dir = str(layout.course)
        spawner.environment["COURSE_ROOT"] = str(layout.course)
    else:
        spawner.cmd = student_view(layout, home) + singleuser
        spawner.notebook_dir = home


HUB_CONFIG = '''# Written by `course classroom up`: the configuration is course.hub.configure.
import sys
sys.path.insert(0, {repo!r})
from course.hub import Layout, configure
configure(get_config(), Layout.from_json({layout!r}))  # noqa: F821
'''


# -- up, down, status -------------------------------------------------------------------------------

def _hub_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _api(layout: Layout, path: str, method: str = "GET") -> object:
    token = layout.admin_token.read_text().strip()
    request = urllib.request.Request(f"{layout.url}/hub/api{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = reply.read()
    return json.loads(body) if body else None


def _wait_for_hub(layout: Layout, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{layout.url}/hub/api", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    tail = "\n".join(layout.log.read_text(errors="replace").splitlines()[-30:]) if layout.log.exists() else ""
    raise SystemExit(f"JupyterHub did not answer at {layout.url} (log: {layout.log}):\n{tail}")


def setup(layout: Layout, stage: str | int = DEFAULT_STAGE, rebuild: bool = False) -> dict[str, str]:
    """Everything but starting: users, proxy, environments, exchange, course, secrets."""
    require_root()
    repo = repo_root()
    if not shutil.which("bwrap"):
        raise SystemExit("bubblewrap (bwrap) is needed: each student's server runs in its own view of the "
                         "machine (`make sandbox-deps`)")
    layout.state.mkdir(parents=True, exist_ok=True)
    os.chown(layout.state, 0, 0)
    layout.state.chmod(0o755)
    layout.hub.mkdir(exist_ok=True)
    layout.hub.chmod(0o700)
    layout.check_scratch.mkdir(mode=0o700, exist_ok=True)
    layout.envs.mkdir(exist_ok=True)
    layout.envs.chmod(0o755)
    ensure_users()
    ensure_proxy(repo)
    if rebuild or not _env_is_current(layout, repo, stage):
        print(f"Building the student environment (stage {_stage_number(stage)}) and the instructor's ...",
              flush=True)
        ensure_environments(layout, repo, stage)
        (layout.envs / "built-from.json").write_text(json.dumps(_env_fingerprint(repo, stage)))
    ensure_exchange(layout)
    ensure_course(layout, repo)
    if not layout.admin_token.exists():
        _write_private(layout.admin_token, secrets.token_hex(32))
    (layout.hub / "jupyterhub_config.py").write_text(HUB_CONFIG.format(repo=str(repo), layout=layout.to_json()))
    (layout.hub / "layout.json").write_text(layout.to_json())
    return ensure_passwords(layout)


def up(layout: Layout, stage: str | int = DEFAULT_STAGE, rebuild: bool = False, timeout: float = 90) -> None:
    started = time.monotonic()
    passwords = setup(layout, stage, rebuild)
    if _hub_pid(layout):
        print(f"JupyterHub already runs (pid {_hub_pid(layout)}).")
    else:
        log = open(layout.log, "ab")
        env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(layout.hub / "jupyterhub_config.py")],
                         cwd=layout.hub, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                         start_new_session=True)
        _wait_for_hub(layout, timeout, proc)
    services = check_service_entry(layout)[0]
    print(f"\nJupyterHub is up in {time.monotonic() - started:.0f} s: {layout.url}/hub/login")
    print(f"  instructor: {INSTRUCTOR} / {passwords[INSTRUCTOR]}   (formgrader: {layout.url}/user/{INSTRUCTOR}/formgrader)")
    for name in STUDENTS:
        print(f"  student:    {name} / {passwords[name]}")
    print(f"  exchange:   {layout.exchange}   instructor's course: {layout.course}")
    print(f"  check service: {layout.url}/services/{services[0]['name']}/ ({layout.check_budget} checks per "
          f"student and assignment in {layout.check_window_hours:g} h)" if services else
          "  check service: none (course.check_service is not in this course yet): %check cannot run in the class")
    print(f"  log: {layout.log}   stop: course classroom down")


def _classroom_pids() -> list[int]:
    """Processes of the classroom's Unix users (their servers, kernels): ours to stop."""
    uids = set()
    for name in (INSTRUCTOR, *STUDENTS):
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (our child, not yet reaped) is gone for this purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def down(layout: Layout, timeout: float = 30) -> None:
    require_root()
    pid = _hub_pid(layout)
    if pid:
        os.kill(pid, signal.SIGTERM)  # the hub stops each user's server, its services and its proxy
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    proxy_pid_file = layout.hub / "proxy.pid"
    for pid_file in (proxy_pid_file,):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    left = _classroom_pids()
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    print(f"JupyterHub stopped{f' (and {len(left)} leftover user process(es))' if left else ''}.")


def status(layout: Layout) -> int:
    pid = _hub_pid(layout)
    if not pid:
        print(f"JupyterHub is not running (state: {layout.state}).")
        return 1
    print(f"JupyterHub runs (pid {pid}) at {layout.url}/hub/login")
    try:
        for user in _api(layout, "/users"):
            servers = user.get("servers") or {}
            state = ", ".join(f"server {s.get('url')} {'ready' if s.get('ready') else 'starting'}"
                              for s in servers.values()) or "no server"
            print(f"  {user['name']}: {state}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"  (the hub's API did not answer: {exc})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state", type=Path, default=STATE, help=f"the classroom's folder (default {STATE})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the hub's public port on 127.0.0.1 (it also uses the next three)")
    parser.add_argument("--stage", default=DEFAULT_STAGE,
                        help="the student edition's stage: the first notebook whose references are out (00)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the student and instructor environments")
    parser.add_argument("--check-budget", type=int, default=10, metavar="N",
                        help="%%check: checks per student and assignment in the window (default 10)")
    parser.add_argument("--check-window", type=float, default=24.0, metavar="HOURS",
                        help="the budget's window in hours (default 24)")
    args = parser.parse_args(argv)
    layout = Layout(args.state.resolve(), args.port, args.check_budget, args.check_window)
    saved = layout.hub / "layout.json"
    if args.action != "up" and args.port == DEFAULT_PORT and saved.exists():
        layout = Layout.from_json(saved.read_text())  # the port `up` was given
    try:
        if args.action == "up":
            up(layout, args.stage, args.rebuild)
            return 0
        if args.action == "down":
            down(layout)
            return 0
        return status(layout)
    except NotRoot as exc:
        return int(exc.code)


if __name__ == "__main__":
    sys.exit(main())
