"""A throwaway PostgreSQL cluster on 127.0.0.1: what the scale-out tests and benchmarks run the
Dagster instance of `dagster.postgres.yaml` on.

Why a cluster of our own rather than a service: CI is `make test` on a fresh machine that has the
PostgreSQL server binaries installed (`postgresql-15`) but no server running, and the tests must
not skip there. `initdb` makes a cluster in a temp folder in about a second, `postgres` serves it
on a free port, and `stop` removes it all. `initdb` and `postgres` refuse to run as root, and CI
runs as root: then both run as the unprivileged `postgres` user (or `nobody`) through `setpriv`,
which execs the server in place, so the pid we hold is the server's and a signal reaches it.

    with LocalPostgres.start() as pg:
        pg.create_database("dagster")
        env = pg.env("dagster")  # DAGSTER_PG_* for dagster.postgres.yaml
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

SUPERUSER = "ml_assets"
BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
READY_TIMEOUT_S = 30.0
# The server's own settings for a scratch cluster. `synchronous_commit=off`: a commit does not
# wait for the WAL flush (a crash loses the newest transactions, never consistency), the same
# trade the embedded instance makes with SQLite `synchronous=OFF` (`ml_assets.sqlite_durability`).
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "synchronous_commit": "off",
    "max_connections": "100",
}


def bin_dir() -> Path:
    """Where `initdb` and `postgres` are: `ML_ASSETS_PG_BIN`, else Debian's layout, else PATH."""
    override = os.environ.get("ML_ASSETS_PG_BIN")
    candidates = [override] if override else list(BIN_DIRS)
    for folder in candidates:
        if (Path(folder) / "initdb").is_file():
            return Path(folder)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise FileNotFoundError(
        f"no PostgreSQL server binaries (initdb) in {candidates} or on PATH: install "
        "postgresql-15 (apt-get install postgresql-15) or set ML_ASSETS_PG_BIN"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists")


def _as_user(user: pwd.struct_passwd | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return ["setpriv", *ids, *argv]


@dataclass
class LocalPostgres:
    """A running cluster: its folder, port and server process."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    user: str = SUPERUSER

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[LocalPostgres]:
        """A new cluster, serving until the block ends; then stopped and removed."""
        pg = cls.launch()
        try:
            yield pg
        finally:
            pg.stop()

    @classmethod
    def launch(cls) -> LocalPostgres:
        """Create and start a cluster (call `stop` to end it; `start` does both). Its folder is
        in the system temp dir, which the server's user can reach when we are root."""
        binaries = bin_dir()
        user = _unprivileged_user()
        root = Path(tempfile.mkdtemp(prefix="ml_assets_pg_"))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        try:
            subprocess.run(
                _as_user(user, [*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"]),
                check=True,
                capture_output=True,
            )
            return cls._serve(root, binaries, user)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _serve(cls, root: Path, binaries: Path, user: pwd.struct_passwd | None) -> LocalPostgres:
        # A port found free can be taken before the server binds it: try a few.
        last_error = ""
        for _ in range(3):
            port = free_port()
            settings = [f"-c{k}={v}" for k, v in {**SERVER_SETTINGS, "port": port}.items()]
            log = (root / "server.log").open("ab")
            argv = [str(binaries / "postgres"), "-D", str(root / "data"), *settings]
            process = subprocess.Popen(_as_user(user, argv), stdout=log, stderr=log)
            log.close()
            pg = cls(root=root, port=port, process=process)
            if pg._wait_ready():
                return pg
            pg._terminate()
            last_error = (root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start in {root}:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.1)
        return False

    def dsn(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg2 driver) for `database`."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def env(self, database: str) -> dict[str, str]:
        """The variables `dagster.postgres.yaml` reads, pointing at `database` here."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": database,
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": "",
        }

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        """Shut the server down and remove the cluster's folder."""
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
