"""Local stand-ins for the AWS side of the end-to-end test: PostgreSQL, moto server, processes.

Everything listens on 127.0.0.1 on free ports and is torn down by the fixtures.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, what: str) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout:.0f} s")


# --- PostgreSQL --------------------------------------------------------------------------

INSTALL_HINT = "apt-get install -y postgresql (or set OPENMWAA_E2E_PG_BIN to PostgreSQL's bin dir)"


def postgres_bin_dir() -> str:
    """The directory of initdb/pg_ctl/postgres/psql: $OPENMWAA_E2E_PG_BIN, Debian's
    /usr/lib/postgresql/<newest>/bin, or `pg_config --bindir`."""
    explicit = os.environ.get("OPENMWAA_E2E_PG_BIN")
    candidates = [explicit] if explicit else []
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += debian
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(out.stdout.strip())
    for candidate in candidates:
        if all(
            os.access(os.path.join(candidate, b), os.X_OK) for b in ("initdb", "pg_ctl", "psql")
        ):
            return candidate
    raise FileNotFoundError(f"PostgreSQL server binaries not found: {INSTALL_HINT}")


@dataclass
class LocalPostgres:
    """A throwaway PostgreSQL cluster: password (SCRAM) authentication over TCP on
    127.0.0.1, trust only over its private Unix socket (for the test's own set-up).

    initdb refuses to run as root, so as root the cluster runs as ``nobody``.
    """

    bin_dir: str
    port: int = field(default_factory=free_port)
    directory: str = ""
    _as_user: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="openmwaa-e2e-pg-", dir="/tmp")
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="nobody")
            self._as_user = ["runuser", "-u", "nobody", "--"]
        data = os.path.join(self.directory, "data")
        self._run(
            [
                os.path.join(self.bin_dir, "initdb"),
                "-D",
                data,
                "-U",
                "e2e_admin",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        self._run(
            [
                os.path.join(self.bin_dir, "pg_ctl"),
                "-D",
                data,
                "-o",
                options,
                "-l",
                os.path.join(self.directory, "postgresql.log"),
                "-w",
                "start",
            ]
        )

    def _run(self, cmd: Sequence[str]) -> None:
        subprocess.run([*self._as_user, *cmd], check=True, cwd="/", capture_output=True, text=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL as the cluster's superuser (over the Unix socket)."""
        out = subprocess.run(
            [
                os.path.join(self.bin_dir, "psql"),
                "-h",
                self.directory,
                "-p",
                str(self.port),
                "-U",
                "e2e_admin",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def create_login(self, username: str, password: str, database: str) -> None:
        """A role with a password and a database it owns (what Aurora's master user has)."""
        quoted_password = password.replace("'", "''")
        self.sql(f"CREATE ROLE \"{username}\" LOGIN PASSWORD '{quoted_password}'")
        self.sql(f'CREATE DATABASE "{database}" OWNER "{username}"')

    def stop(self) -> None:
        if not self.directory:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                [
                    os.path.join(self.bin_dir, "pg_ctl"),
                    "-D",
                    os.path.join(self.directory, "data"),
                    "-m",
                    "immediate",
                    "stop",
                ]
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self, mode: str = "fast", timeout: float = 60.0) -> float:
        """``pg_ctl restart -m <mode>`` on the same data directory and port, with the same
        server options (pg_ctl reuses postmaster.opts): every client connection is cut.
        Waits until the server accepts connections again; returns the seconds it took."""
        started = time.monotonic()
        self._run(
            [
                os.path.join(self.bin_dir, "pg_ctl"),
                "-D",
                os.path.join(self.directory, "data"),
                "-m",
                mode,
                "-t",
                str(int(timeout)),
                "-l",
                os.path.join(self.directory, "postgresql.log"),
                "-w",
                "restart",
            ]
        )
        return time.monotonic() - started


# --- processes ---------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        pid = int(text.split(" ", 1)[0])
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    return children


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children = _children_map()
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every process below it, as when an ECS task dies: the tree is
    stopped first (SIGSTOP, again until no new process appears, so that nothing forks away
    during the kill), then killed. Returns the pids killed."""
    stopped: list[int] = []
    while True:
        tree = [p for p in [pid, *descendants(pid)] if p not in stopped]
        if not tree:
            break
        _signal_all(tree, signal.SIGSTOP)
        stopped.extend(tree)
    _signal_all(stopped, signal.SIGKILL)
    return stopped


@contextlib.contextmanager
def frozen_tree(pid: int) -> Iterator[list[int]]:
    """Stop ``pid`` and every process below it (SIGSTOP) for the block, then let them go on
    (SIGCONT): a hung process, or to its clients an endpoint whose port still accepts
    connections but that answers nothing."""
    tree = [pid, *descendants(pid)]
    _signal_all(tree, signal.SIGSTOP)
    try:
        yield tree
    finally:
        _signal_all([*tree, *descendants(pid)], signal.SIGCONT)


@dataclass
class Process:
    """A started process, its own session leader, with its output in ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM the process (as ECS does to PID 1), wait ``grace`` s, then SIGKILL it and
        everything below it. Returns its exit code, None if it had to be killed."""
        tree = descendants(self.popen.pid)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        code = self.popen.poll()
        for pid in [self.popen.pid, *tree, *descendants(self.popen.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        return code

    def hard_kill(self, timeout: float = 30.0) -> list[int]:
        """SIGKILL the process and everything below it at once, no SIGTERM and no grace (a
        task that dies, an OOM kill), and reap it. Returns the pids killed."""
        killed = kill_tree(self.popen.pid)
        self.popen.wait(timeout)
        return killed


def start_process(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: str
) -> Process:
    """Start ``argv`` with exactly ``env`` in a new session, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name=name, popen=popen, log_path=log_path)


# --- moto --------------------------------------------------------------------------------


MOTO_IAM_SERVER = Path(__file__).resolve().parent / "moto_iam_server.py"


@dataclass
class MotoServer:
    """moto in server mode on 127.0.0.1 (S3, SQS, Secrets Manager, CloudWatch, ECS, IAM),
    started by ``moto_iam_server.py``: once :func:`principals.enforce` is called, every call
    is authorized as AWS would and its decision appended to ``decisions_path``."""

    python: str
    log_path: Path
    decisions_path: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = start_process(
            "moto",
            [
                self.python,
                str(MOTO_IAM_SERVER),
                "--record",
                str(self.decisions_path),
                "-H",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env,
            self.log_path,
            cwd="/",
        )
        wait_for_port(self.port, 60, "moto server")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=5).close()
                return
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)

    def freeze(self, seconds: float) -> None:
        """Stop the moto server (SIGSTOP) for ``seconds``, then let it go on: its port still
        accepts connections, but nothing answers (an AWS endpoint that hangs)."""
        if self.process is None:
            raise RuntimeError("the moto server is not running")
        with frozen_tree(self.process.popen.pid):
            time.sleep(seconds)
