"""Worker processes that run the playground's API calls under a time limit.

llguidance can spin forever inside one token-mask computation (with the GIL released), and lark's
Earley parser can take very long on a hostile grammar; neither can be interrupted from a thread. So
every call runs in a long-lived worker process (imports and compiled grammars stay warm between
calls); a call that outlives its time limit gets the worker's whole process group killed (the hang
probe's own child with it) and a fresh worker started. A worker also runs under an address-space
limit, so a grammar that explodes in memory kills that worker, not the machine.

Run as ``python -m constrain.playground._workers``, this module is the worker: one JSON request per
line on stdin (``{"op": ..., "body": ...}``), one JSON answer per line on the original stdout
(``{"status": ..., "body": ...}``); anything else the libraries print goes to stderr.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["WorkerPool", "TimeLimitError", "BusyError"]

MEMORY_LIMIT_BYTES = 4 << 30
"""The address-space limit of a worker process (RLIMIT_AS)."""


class TimeLimitError(Exception):
    """A call outlived its time limit; its worker was killed."""


class BusyError(Exception):
    """Every worker stayed busy for longer than the wait allowed."""


class _Worker:
    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # the constrain this server runs from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "constrain.playground._workers"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            cwd=package_root,  # `-m` puts the working directory first on sys.path: make it this package's root
            start_new_session=True,  # its own process group: killing it also kills the hang probe's child
        )

    def call(self, op: str, body: Any, seconds: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, "body": body}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise RuntimeError("the worker process is gone") from None
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        if not ready:
            raise TimeLimitError(op)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker process died (exit status {self.proc.poll()}); "
                               "the grammar may need more memory than a worker may use")
        return json.loads(line)  # type: ignore[no-any-return]

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class WorkerPool:
    """``size`` worker processes; ``call`` runs one API operation in an idle one within ``seconds``."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._add()

    def _add(self) -> None:
        worker = _Worker()
        with self._lock:
            self._all.add(worker)
        self._idle.put(worker)

    def call(self, op: str, body: Any, *, seconds: float, wait: float = 30.0) -> dict[str, Any]:
        """``{"status": int, "body": {...}}`` from a worker; ``TimeLimitError`` / ``BusyError`` otherwise."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        try:
            worker = self._idle.get(timeout=wait)
        except queue.Empty:
            raise BusyError(f"every worker stayed busy for {wait:g} s") from None
        started = time.monotonic()
        try:
            answer = worker.call(op, body, seconds)
        except BaseException:
            self._replace(worker)
            raise
        answer["seconds"] = round(time.monotonic() - started, 3)
        self._idle.put(worker)
        return answer

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
        if not self._closed:
            self._add()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()


# -- the worker process ----------------------------------------------------------------------------------
def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    from . import _api

    for line in requests:
        status, body = 200, None
        try:
            request = json.loads(line)
            body = _api.handle(request.get("op"), request.get("body"))
        except Exception as exc:  # every error goes back as typed JSON; a bug is a 500 naming its type
            status, body = _api.error_status(exc), _api.error_body(exc)
        answers.write(json.dumps({"status": status, "body": body}, ensure_ascii=False, default=repr).encode() + b"\n")
        answers.flush()


def _main() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from the libraries must not corrupt the answers
    sys.stdout = sys.stderr
    from . import _api  # noqa: F401  (import the engines before the first request)

    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    _main()
