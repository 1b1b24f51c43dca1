"""Credentials for grading on a Dask cluster: TLS with mutual authentication, nothing unpickled back.

A Dask scheduler or worker runs whatever code a connected client sends it; with plain ``tcp://``
anyone who can reach the port is such a client. :func:`make_credentials` makes a private
certificate authority and a certificate for each role (scheduler, workers, ``course grade``);
the authority's own key is thrown away once they are signed, so nobody can make another. With
them, every connection of the cluster is TLS and both ends must show a certificate of this
authority (distributed's :class:`~distributed.Security`: ``CERT_REQUIRED`` on both sides, only
this authority trusted, not the system's): a user of the machine without the files cannot connect,
submit a task, or replace the worker's grading function.

What a worker sends back is never unpickled by ``course grade``: the task returns JSON bytes
(:meth:`course.jobs.Outcome.to_plain`), the client reads results with Dask's ``msgpack``
deserializer only, and while the client runs (:func:`no_unpickling`) distributed's own unpickler
refuses to load any global, so a pickle in a message (an error, a result) loads as nothing.
"""

from __future__ import annotations

import datetime
import os
import pickle
import stat
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROLES = ("scheduler", "worker", "client")
CA_FILE = "ca.pem"
VALID_DAYS = 365


class CredentialsError(ValueError):
    """The credentials folder is missing, incomplete, or readable by other users."""


@dataclass(frozen=True)
class Credentials:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / CA_FILE

    def cert(self, role: str) -> Path:
        return self.folder / f"{role}.pem"

    def key(self, role: str) -> Path:
        return self.folder / f"{role}-key.pem"

    def files(self) -> list[Path]:
        return [self.ca] + [p for role in ROLES for p in (self.cert(role), self.key(role))]

    def tls_options(self, role: str) -> list[str]:
        """The ``dask scheduler`` / ``dask worker`` options for ``role``."""
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.cert(role)), "--tls-key", str(self.key(role))]


def _private_folder(folder: Path) -> None:
    """Create ``folder`` mode 0700 (or check an existing one is a folder of ours), never through a link."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise CredentialsError(f"{folder} is not a folder of this user's")
    os.chmod(folder, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def make_credentials(folder: Path, days: int = VALID_DAYS) -> Credentials:
    """A private CA and a certificate per role in ``folder`` (0700, files 0600); refuses to overwrite any."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    creds = Credentials(Path(folder))
    _outside_the_sandbox(creds.folder)
    existing = [p.name for p in creds.files() if os.path.lexists(p)]
    if existing:
        raise CredentialsError(f"{folder} already holds {', '.join(existing)}: nothing was overwritten "
                               "(remove them, or choose another folder)")
    _private_folder(creds.folder)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "course grading cluster"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("course grading CA")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    _write_private(creds.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(f"course-dask-{role}")).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_private(creds.key(role), pem_key(key))
        _write_private(creds.cert(role), cert.public_bytes(serialization.Encoding.PEM))
    del ca_key  # never written: no one can sign another certificate for this cluster
    return creds


def _outside_the_sandbox(folder: Path) -> None:
    """The keys must not lie in what the grading sandbox shows the students' code (the venv, the library)."""
    from course.sandbox import visible_paths

    real = Path(folder).resolve()
    for shown in visible_paths():
        if real == shown or shown in real.parents:
            raise CredentialsError(f"{folder} lies in {shown}, which the grading sandbox shows to the students' "
                                   "code: keep the credentials elsewhere (in your home, say)")


def load_credentials(folder: Path, role: str) -> Credentials:
    """The credentials in ``folder`` for ``role``, checked: present, regular files, keys readable by us alone."""
    creds = Credentials(Path(folder))
    _outside_the_sandbox(creds.folder)
    for path in (creds.ca, creds.cert(role), creds.key(role)):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise CredentialsError(f"{path} is missing: make the credentials with `course dask-credentials "
                                   f"{folder}` and copy the folder to every machine of the cluster") from None
        if not stat.S_ISREG(info.st_mode):
            raise CredentialsError(f"{path} is not a regular file")
    info = os.stat(creds.key(role))
    if info.st_mode & 0o077 or info.st_uid != os.geteuid():
        raise CredentialsError(f"{creds.key(role)} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}): "
                               "anyone who reads it can run code on the cluster. `chmod 600` it, owned by you")
    return creds


def security(folder: Path, role: str = "client"):
    """distributed's :class:`Security` for ``role``: TLS required, this cluster's CA only, our certificate shown."""
    from distributed import Security

    creds = load_credentials(folder, role)
    return Security(require_encryption=True, tls_ca_file=str(creds.ca),
                    **{f"tls_{role}_cert": str(creds.cert(role)), f"tls_{role}_key": str(creds.key(role))})


def check_scheduler_address(address: str) -> str:
    """``address`` if it is a ``tls://`` one; a clear error for anything else (``tcp://`` lets anyone in)."""
    if not address.startswith("tls://"):
        scheme = address.split("://")[0] + "://" if "://" in address else "an address without tls://"
        raise CredentialsError(f"refusing to grade on {address!r}: {scheme} is not authenticated, and any user "
                               "who can reach it can run code as the workers and read the hidden tests. Start the "
                               "cluster with TLS (`course dask-credentials --help`) and pass tls://HOST:PORT")
    return address


@dataclass(frozen=True)
class DaskCluster:
    """Where ``course grade`` sends its jobs: a ``tls://`` scheduler and the folder of the client's credentials."""
    address: str
    credentials: Path

    def checked_address(self) -> str:
        return check_scheduler_address(self.address)

    def security(self):
        return security(self.credentials, "client")


def scheduler_command(creds: Credentials, host: str = "127.0.0.1", port: int = 8786) -> list[str]:
    """``dask scheduler`` with TLS, no dashboard (its HTTP server is not authenticated)."""
    return [sys.executable, "-m", "distributed.cli.dask_scheduler", "--protocol", "tls", "--host", host,
            "--port", str(port), "--no-dashboard", *creds.tls_options("scheduler")]


WORKER_ENV = {
    # The grading task starts one process per job; a daemonic worker process may not have children.
    "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
    "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
}


def worker_command(creds: Credentials, scheduler: str, nthreads: int = 1) -> list[str]:
    """``dask worker`` with TLS: one worker process whose ``nthreads`` threads each grade one job at a time."""
    return [sys.executable, "-m", "distributed.cli.dask_worker", check_scheduler_address(scheduler),
            "--nthreads", str(nthreads), "--nworkers", "1", "--no-dashboard", *creds.tls_options("worker")]


# Classes whose construction runs no code of anyone's: plain data, and the built-in exceptions (what
# distributed's own error replies hold). Anything else in a pickle is refused.
_PLAIN_TYPES = {"bytes", "bytearray", "str", "int", "float", "complex", "bool", "tuple", "list", "dict", "set",
                "frozenset", "slice", "range"}


class RefusedPickle(pickle.UnpicklingError, TypeError):
    """A pickle from the cluster named a class or function (a TypeError too: distributed expects one there)."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        import builtins

        value = getattr(builtins, name, None) if module == "builtins" else None
        if value is not None and (name in _PLAIN_TYPES or (isinstance(value, type) and issubclass(value, BaseException))):
            return value
        raise RefusedPickle(f"refused to load {module}.{name} from the cluster")


def _refusing_loads(data, *, buffers=(), **_kwargs):
    """Plain data only (str, bytes, numbers, lists, dicts): any class or function in a pickle is refused."""
    import io

    return _NoGlobals(io.BytesIO(bytes(data)), buffers=buffers).load()


class _PlainPickle:
    """The ``pickle`` module as ``distributed.client`` sees it under :func:`no_unpickling`: ``loads`` refuses globals."""

    loads = staticmethod(_refusing_loads)

    def __getattr__(self, name: str):
        return getattr(pickle, name)


@contextmanager
def no_unpickling():
    """While ``course grade`` talks to the cluster, distributed's unpickling loads no class and no function.

    distributed unpickles parts of some messages whatever the client's ``deserializers``:
    ``__Pickled__`` frames, task errors and their tracebacks, the type of every result, and
    warnings a task sends (``distributed.warn``: the message is unpickled with the standard
    ``pickle``). Under this, every one of them goes through an unpickler that refuses any class
    or function but plain data types and built-in exceptions, so a pickle that would run code
    fails to load (its student gets a reason) instead. The scheduler must not run in this process.
    """
    import distributed.client as dask_client
    from distributed.protocol import pickle as dask_pickle

    patched = [(dask_pickle, "loads", _refusing_loads), (dask_client, "loads", _refusing_loads),
               (dask_client, "pickle", _PlainPickle())]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patched]
    for module, name, value in patched:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
