"""The playground's HTTP server: the page (three static files) and its JSON API, on 127.0.0.1 only.

stdlib ``http.server`` with one thread per connection; the API calls themselves run in worker
processes under a time limit (``_workers``), so no grammar can pin the server. Requests from other
origins are refused: the ``Host`` header must name this server (no DNS rebinding), and API calls must
be ``application/json`` (a cross-site form cannot send that without a preflight this server never
answers).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..errors import ConstrainError, InputError
from ..grammar import load_grammar
from ..grammar.lint import TARGETS
from . import _api
from ._workers import BusyError, TimeLimitError, WorkerPool

__all__ = ["Playground", "MAX_BODY_BYTES", "CHECK_SECONDS", "CALL_SECONDS"]

MAX_BODY_BYTES = 24 << 20
"""The largest request body (a base64-encoded SQLite file of ``LIMITS["sqlite_bytes"]`` fits)."""

CHECK_SECONDS = 30.0
"""Time limit of one ``/api/check`` (it includes the hang probe, which alone may take 5 s)."""

CALL_SECONDS = 10.0
"""Time limit of one ``/api/explain``, ``/api/sample`` or ``/api/compile-schema``."""

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_OPERATIONS = {f"/api/{op}" for op in _api.OPERATIONS}


@dataclass
class SlowAnswer:
    """A test hook (``Playground(slow=...)``): the answer to each API request that ``matches(op, body)`` is held
    back until ``release`` is set (at most ``seconds``), so that a test can make one answer arrive late.

    ``held`` is set once such an answer is ready and waiting, ``sent`` once it has been written to the client.
    """

    matches: Callable[[str, dict[str, Any]], bool]
    seconds: float = 60.0
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    sent: threading.Event = field(default_factory=threading.Event)


def _static(name: str) -> bytes:
    return resources.files("constrain.playground").joinpath("static", name).read_bytes()


class Playground:
    """The playground server. ``start()`` serves in a background thread; ``serve_forever()`` blocks.

    ``grammar`` (a packaged name or a ``.lark`` path) is what the page opens with; ``db`` (anything
    ``constrain.sql.connect`` takes) opens it with that database's SQL grammar instead, its schema read
    through the database's catalog and shown as the SQL form's DDL (no password reaches the page).
    ``slow`` is a test hook that makes chosen answers late (see ``SlowAnswer``).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        grammar: str | None = None,
        db: Any = None,
        workers: int = 3,
        check_seconds: float = CHECK_SECONDS,
        call_seconds: float = CALL_SECONDS,
        slow: SlowAnswer | None = None,
    ) -> None:
        if workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if grammar is not None and db is not None:
            raise InputError("open the playground with a grammar or a database, not both")
        self.database: dict[str, Any] | None = None
        self.initial = self._initial(grammar) if db is None else self._from_database(db)
        self.check_seconds = check_seconds
        self.call_seconds = call_seconds
        self.slow = slow
        self._pool: WorkerPool | None = None
        self._workers = workers
        try:
            self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self._httpd.playground = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self._spinning: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _initial(grammar: str | None) -> dict[str, Any]:
        if grammar is None:
            return _api.packaged_grammar("dsl/cron")
        loaded = load_grammar(grammar)
        if loaded.name in {g["name"] for g in _api.grammar_list()}:
            return _api.packaged_grammar(loaded.name)
        return {"name": loaded.name, "text": loaded.text, "origin": None}

    def _from_database(self, db: Any) -> dict[str, Any]:
        from ..sql import connect

        with connect(db, samples=0) as database:
            schema, dialect, where = database.schema, database.dialect, database.url
        ddl = schema.describe(keys=True)
        compiled = _api.compile_schema({"kind": "ddl", "ddl": ddl, "dialect": dialect})
        self.database = {"ddl": ddl, "dialect": dialect, "url": where}
        first = schema.tables[0]
        return {"name": compiled["name"], "text": compiled["grammar"], "origin": compiled["origin"],
                "label": f"{compiled['name']} of {where}", "example": f"SELECT * FROM {schema.quoted(first)} LIMIT 5"}

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self._workers)
        return self._pool

    def start(self) -> Playground:
        self.pool  # start the workers before the first request
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="constrain-playground", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.pool
        try:
            self._httpd.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Playground:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the handler asks -------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "grammars": _api.grammar_list(),
            "initial": self.initial,
            "database": self.database,
            "targets": sorted(TARGETS),
            "limits": {**_api.LIMITS, "body_bytes": MAX_BODY_BYTES, "check_seconds": self.check_seconds,
                       "call_seconds": self.call_seconds},
        }

    def call(self, op: str, body: Any) -> tuple[int, dict[str, Any]]:
        """The status and answer of one API call; a request's ``version`` comes back in its answer, errors included,
        so that a client can tell which of its requests an answer is for."""
        version = body.get("version") if isinstance(body, dict) else None
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            return 400, _error("InputError", f"`version` must be an integer, got {version!r}")
        status, answer = self._call(op, body)
        if version is not None:
            answer["version"] = version
        return status, answer

    def _call(self, op: str, body: Any) -> tuple[int, dict[str, Any]]:
        seconds = self.check_seconds if op == "check" else self.call_seconds
        grammar = body.get("grammar") if isinstance(body, dict) else None
        key = hashlib.sha256(grammar.encode("utf-8", "replace")).hexdigest() if isinstance(grammar, str) else None
        if key is not None and op != "check" and key in self._spinning:
            return 422, _error("TimeLimitError", self._spinning[key])
        try:
            answer = self.pool.call(op, body, seconds=seconds)
        except TimeLimitError:
            message = (f"{op} took longer than the playground's limit of {seconds:g} s (the grammar may make an "
                       "engine spin); the work was stopped")
            if key is not None:
                self._remember_spinning(key, message)
            return 422, _error("TimeLimitError", message)
        except BusyError as exc:
            return 503, _error("BusyError", f"the playground is busy: {exc}")
        except RuntimeError as exc:
            return 422, _error("WorkerError", str(exc))
        body_out = answer["body"]
        if answer["status"] == 200:
            body_out["seconds"] = answer["seconds"]
            if key is not None and op == "check" and body_out["hang_probe"]["hangs"]:
                self._remember_spinning(key, "the hang probe found that llguidance spins on this grammar; "
                                        "explain and sample are off until the grammar changes")
        return int(answer["status"]), body_out

    def _remember_spinning(self, key: str, message: str) -> None:
        """Grammars that made an engine spin: explain and sample refuse them at once instead of spinning again."""
        with self._lock:
            self._spinning[key] = message
            while len(self._spinning) > 256:
                self._spinning.pop(next(iter(self._spinning)))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a closed tab is no error
            super().handle_error(request, client_address)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "constrain-playground"

    @property
    def playground(self) -> Playground:
        return self.server.playground  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the URL only
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _host_ok(self) -> bool:
        port = self.playground.port
        return self.headers.get("Host", "") in (f"127.0.0.1:{port}", f"localhost:{port}")

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._json(403, _error("ForbiddenError", "the Host header does not name this server"))
        url = urlsplit(self.path)
        if url.path in _STATIC:
            name, content_type = _STATIC[url.path]
            return self._send(200, _static(name), content_type)
        if url.path == "/api/grammars":
            return self._json(200, self.playground.info())
        if url.path == "/api/grammar":
            name = (parse_qs(url.query).get("name") or [""])[0]
            try:
                return self._json(200, _api.packaged_grammar(name))
            except ConstrainError as exc:
                return self._json(404, _api.error_body(exc))
        if url.path in _OPERATIONS:
            return self._json(405, _error("MethodError", f"{url.path} takes POST with a JSON body"))
        return self._json(404, _error("NotFoundError", f"no such page or API: {url.path}"))

    def do_POST(self) -> None:
        if not self._host_ok():
            return self._json(403, _error("ForbiddenError", "the Host header does not name this server"))
        path = urlsplit(self.path).path
        if path not in _OPERATIONS:
            self.close_connection = True
            return self._json(404, _error("NotFoundError", f"no such API: {path} (POST {', '.join(sorted(_OPERATIONS))})"))
        if self.headers.get_content_type() != "application/json":
            self.close_connection = True
            return self._json(415, _error("InputError", "the request body must be JSON (Content-Type: application/json)"))
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._json(411, _error("InputError", "a Content-Length header is required"))
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read
            return self._json(413, _error("InputError", f"the request body is {length:,} bytes, over the limit of {MAX_BODY_BYTES:,}"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._json(400, _error("InputError", f"the request body is not valid JSON: {exc}"))
        op = path.removeprefix("/api/")
        status, answer = self.playground.call(op, body)
        slow = self.playground.slow
        if slow is not None and isinstance(body, dict) and slow.matches(op, body):
            slow.held.set()
            slow.release.wait(slow.seconds)
            self._json(status, answer)
            slow.sent.set()
            return
        self._json(status, answer)

