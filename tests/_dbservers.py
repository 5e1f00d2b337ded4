"""Private PostgreSQL and MariaDB servers for tests and benchmarks, and typed copies of SQLite databases.

``start_postgres(folder)`` / ``start_mariadb(folder)`` start a throw-away server from Debian's packages
(DESIGN.md section 10): its own data folder, 127.0.0.1 on a free port, an ``app`` user with a random
password, every statement the server receives written to ``server.log_path`` (PostgreSQL
``log_statement=all``, MariaDB's general log), so a test can prove that a refused query never reached it.
Run as root, the servers run as the system users ``postgres`` and ``mysql``; run as another user, as that
user (who then needs to be able to run the binaries). ``load_chinook(server)`` loads the Chinook corpus;
``_dbcopy.copy_sqlite(path, target)`` copies a SQLite file into one of these servers or a DuckDB file.

The ``app`` user is not a superuser but has every privilege on its databases (PostgreSQL: ``CREATEDB``,
all privileges on the database, its ``public`` schema and its tables; MariaDB: ``ALL`` on the database),
so read-only behaviour in tests is proved by the caller's transaction settings, not by grants.

No pytest import: ``bench/`` loads this file by path (``importlib``), as ``tests/`` is not a package.
"""

from __future__ import annotations

import atexit
import csv
import getpass
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("CONSTRAIN_CORPORA", ROOT.parent / "shared" / "corpora"))
START_SECONDS = 60.0
APP_USER = "app"


class ServerUnavailable(RuntimeError):
    """The server's binaries (or its system user, when running as root) are not on this machine."""


class ServerError(RuntimeError):
    """A server failed to start or an administrative statement failed (the message has the log tail)."""


# ---------------------------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _which(name: str) -> str | None:
    """``shutil.which`` that also looks in the sbin folders (not on a non-root user's PATH on Debian)."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/usr/bin"])
    return shutil.which(name, path=path)


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without libpq/MySQL client settings that would redirect our clients."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL", "MARIADB"))}
    env.update(extra)
    return env


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


def _prepare_base(folder: Path, name: str, user: str | None, socket_room: int) -> tuple[Path, bool]:
    """The server's working folder ``folder/name`` owned by ``user`` (root only), or a private temporary
    folder when ``user`` could not reach ``folder`` (e.g. pytest's 0700 ``/tmp/pytest-of-root``) or its
    path is too long for a Unix socket. Returns (folder, private)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / name
    reachable = len(str(base)) + socket_room < 100
    if reachable and user:
        reachable = subprocess.run([*_run_as(user), "test", "-x", str(folder)], cwd="/", check=False).returncode == 0
    private = not reachable
    if private:
        base = Path(tempfile.mkdtemp(prefix=f"constrain-{name}-"))
    else:
        if base.exists():
            shutil.rmtree(base)
        base.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    os.chmod(base, 0o700)
    return base, private


def _postgres_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0)
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = _which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServerUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH)")


def _system_user(name: str, what: str) -> str | None:
    """The system user to run a server as: ``name`` when running as root, else nobody (run as ourselves)."""
    if not _is_root():
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise ServerUnavailable(f"{what} needs the system user {name!r} when run as root; it does not exist") from None
    if not shutil.which("runuser"):
        raise ServerUnavailable("runuser (util-linux) is needed to run the server as its system user")
    return name


# ---------------------------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A running private server. ``url`` is a SQLAlchemy URL (plain scheme, no driver) for the ``app`` user."""

    kind: str  # "postgresql" | "mariadb"
    port: int
    password: str = field(repr=False)
    folder: Path  # the server's working folder (data, socket, logs)
    log_path: Path  # every statement the server received
    database: str  # the database ``url`` names ("" = none); load_chinook sets it
    user: str = APP_USER
    _private: bool = False
    _caller_folder: Path | None = None
    _stop: Any = field(default=None, repr=False)
    _admin: Any = field(default=None, repr=False)
    _stopped: bool = False

    @property
    def scheme(self) -> str:
        return "postgresql" if self.kind == "postgresql" else "mysql"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"{self.scheme}://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def admin_sql(self, sql: str, database: str | None = None) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (one or more statements) as the superuser through the command-line client; returns
        the rows of the statements that return rows, values as text and NULL as None (MariaDB: the string
        ``NULL`` also reads as None). Raises ServerError with the client's message on failure."""
        return self._admin(sql, database)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Fast shutdown. Removes only a private temporary folder (after copying its logs into the
        caller's folder, where ``log_path`` then points); the caller's folder keeps the data folder."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._stop()
        finally:
            if self._private and self._caller_folder is not None:
                keep = self._caller_folder / f"{self.kind}-logs"
                keep.mkdir(parents=True, exist_ok=True)
                for log in self.folder.glob("*.log"):
                    shutil.copy(log, keep / log.name)
                self.log_path = keep / self.log_path.name
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_postgres(folder: Path) -> Server:
    """Initialise and start a PostgreSQL cluster under ``folder`` (DESIGN.md section 10)."""
    bindir = _postgres_bindir()
    user = _system_user("postgres", "PostgreSQL")
    as_user = _run_as(user)
    base, private = _prepare_base(Path(folder), "postgres", user, socket_room=len("/.s.PGSQL.65535.lock"))
    data, log = base / "data", base / "postgres.log"
    superuser, super_password, password = "postgres", secrets.token_hex(16), secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(super_password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    os.chmod(pwfile, 0o600)
    env = _clean_env(LC_ALL="C.UTF-8")
    init = subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", superuser, "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        cwd=base, env=env, capture_output=True, text=True, check=False,
    )
    pwfile.unlink()
    if init.returncode:
        raise ServerError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")

    def psql(sql: str, database: str | None = None) -> list[tuple[str | None, ...]]:
        cmd = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv", "-t", "-P", "null=\x01NULL",
               "-h", str(base), "-p", str(port), "-U", superuser, "-d", database or "postgres", "-f", "-"]
        done = subprocess.run(cmd, input=sql, env=_clean_env(PGPASSWORD=super_password), cwd=base,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise ServerError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return [tuple(None if v == "\x01NULL" else v for v in row) for row in csv.reader(done.stdout.splitlines()) if row]

    def pg_ctl_stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
                       cwd=base, env=env, capture_output=True, check=False)

    for attempt in range(3):
        port = _free_port()
        options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c log_statement=all -c log_min_messages=warning")
        started = subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(int(START_SECONDS)),
             "-o", options, "start"],
            cwd=base, env=env, capture_output=True, text=True, check=False,
        )
        if started.returncode == 0:
            break
        if attempt == 2 or "already in use" not in _tail(log, 10):
            pg_ctl_stop()
            raise ServerError(f"PostgreSQL did not start ({started.stderr.strip()}); log tail:\n{_tail(log)}")
    server = Server("postgresql", port, password, base, log, "postgres", _private=private,
                    _caller_folder=Path(folder).resolve(), _stop=pg_ctl_stop, _admin=psql)
    atexit.register(server.stop)
    try:
        psql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{password}';")
    except BaseException:
        server.stop()
        raise
    return server


def _mariadb_binaries() -> tuple[str, str, str]:
    found = [_which(name) for name in ("mariadbd", "mariadb-install-db", "mariadb")]
    if not all(found):
        missing = [n for n, p in zip(("mariadbd", "mariadb-install-db", "mariadb"), found) if not p]
        raise ServerUnavailable(f"MariaDB is not installed (missing {', '.join(missing)})")
    return found[0], found[1], found[2]  # type: ignore[return-value]


def _mariadb_unescape(value: str) -> str | None:
    if value == "NULL":
        return None
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}.get(m.group(1), m.group(1)), value)


def start_mariadb(folder: Path) -> Server:
    """Initialise and start a MariaDB server under ``folder`` (DESIGN.md section 10)."""
    mariadbd, install_db, client = _mariadb_binaries()
    user = _system_user("mysql", "MariaDB")
    base, private = _prepare_base(Path(folder), "mariadb", user, socket_room=len("/mysql.sock.lock"))
    data, sock = base / "data", base / "mysql.sock"
    log, error_log = base / "general.log", base / "error.log"
    os_user = user or getpass.getuser()  # the socket-authenticated admin account mariadb-install-db creates
    admin = "root" if user else os_user
    env = _clean_env()
    # a server's own temp folder: two servers bootstrapping at once in a shared /tmp collide on the
    # names of their internal temporary tables ("Could not remove temporary table ... Aborting")
    tmp = base / "tmp"
    tmp.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(
        [install_db, "--no-defaults", f"--user={os_user}", f"--datadir={data}", f"--tmpdir={tmp}",
         "--auth-root-authentication-method=socket", "--skip-test-db", "--skip-name-resolve"],
        cwd=base, env=env, capture_output=True, text=True, check=False,
    )
    if init.returncode:
        raise ServerError(f"mariadb-install-db failed ({init.returncode}):\n{init.stdout[-2000:]}\n{init.stderr[-2000:]}")

    def client_sql(sql: str, database: str | None = None) -> list[tuple[str | None, ...]]:
        cmd = [client, "--no-defaults", f"-u{admin}", f"--socket={sock}", "--batch", "--skip-column-names",
               "--default-character-set=utf8mb4", *([database] if database else [])]
        done = subprocess.run(cmd, input=sql, env=env, cwd=base, capture_output=True, text=True, check=False)
        if done.returncode:
            raise ServerError(f"mariadb client failed ({done.returncode}): {done.stderr.strip()}")
        return [tuple(_mariadb_unescape(v) for v in line.split("\t")) for line in done.stdout.splitlines()]

    process: subprocess.Popen[bytes] | None = None

    def shutdown() -> None:
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: a normal (fast) InnoDB shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    port = 0
    for attempt in range(3):
        port = _free_port()
        error_log.unlink(missing_ok=True)
        process = subprocess.Popen(
            [mariadbd, "--no-defaults", *([f"--user={user}"] if user else []), f"--datadir={data}",
             f"--tmpdir={tmp}", f"--socket={sock}", f"--port={port}", "--bind-address=127.0.0.1", "--skip-log-bin",
             "--skip-name-resolve", f"--pid-file={base / 'mariadbd.pid'}", f"--log-error={error_log}",
             "--general-log=1", f"--general-log-file={log}", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_general_ci", "--innodb-flush-log-at-trx-commit=0",
             "--innodb-buffer-pool-size=64M", "--innodb-doublewrite=0", "--max-allowed-packet=64M"],
            cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            try:
                client_sql("SELECT 1")
                break
            except ServerError:
                time.sleep(0.2)
        else:
            tail = _tail(error_log)
            shutdown()
            if attempt < 2 and "already in use" in tail:
                continue
            why = "exited" if process.poll() is not None else f"did not answer within {START_SECONDS:.0f} s"
            raise ServerError(f"MariaDB {why}; error log tail:\n{tail}")
        break
    server = Server("mariadb", port, secrets.token_hex(16), base, log, "", _private=private,
                    _caller_folder=Path(folder).resolve(), _stop=shutdown, _admin=client_sql)
    atexit.register(server.stop)
    try:
        client_sql(f"CREATE USER '{APP_USER}'@'127.0.0.1' IDENTIFIED BY '{server.password}';")
    except BaseException:
        server.stop()
        raise
    return server


def create_database(server: Server, name: str) -> str:
    """Create (or keep) database ``name`` on ``server`` with every privilege for the app user; its URL."""
    if server.kind == "postgresql":
        quoted = '"' + name.replace('"', '""') + '"'
        literal = name.replace("'", "''")
        if not server.admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{literal}'"):
            server.admin_sql(f"CREATE DATABASE {quoted} OWNER {APP_USER};")
        server.admin_sql(f"GRANT ALL ON SCHEMA public TO {APP_USER};", database=name)
    else:
        quoted = "`" + name.replace("`", "``") + "`"
        grant = "`" + re.sub(r"([_%\\])", r"\\\1", name).replace("`", "``") + "`"  # `_` and `%` are wildcards
        server.admin_sql(
            f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n"
            f"GRANT ALL PRIVILEGES ON {grant}.* TO '{APP_USER}'@'127.0.0.1';"
        )
    return server.url_for(name)


def load_chinook(server: Server) -> Server:
    """Load the Chinook corpus script (PostgreSQL: database ``chinook``; MariaDB: ``Chinook``), give the app
    user every privilege on it and point ``server.url`` at it."""
    folder = CORPORA / "chinook"
    if server.kind == "postgresql":
        script, database = folder / "Chinook_PostgreSql.sql", "chinook"
        server.admin_sql(script.read_text(encoding="utf-8"))
        server.admin_sql(
            f"GRANT ALL ON DATABASE chinook TO {APP_USER};\nGRANT ALL ON SCHEMA public TO {APP_USER};\n"
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {APP_USER};\n"
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {APP_USER};",
            database="chinook",
        )
    else:
        script, database = folder / "Chinook_MySql.sql", "Chinook"
        server.admin_sql(script.read_text(encoding="utf-8"))
        server.admin_sql(f"GRANT ALL PRIVILEGES ON `Chinook`.* TO '{APP_USER}'@'127.0.0.1';")
    server.database = database
    return server
