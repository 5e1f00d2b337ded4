"""Human or JSON output for CLI commands, errors on stderr, progress on stderr when it is a terminal."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar

from ..errors import ConstrainError, InputError

T = TypeVar("T")


def add_json_flag(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


class Output:
    def __init__(self, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def line(self, text: str = "") -> None:
        """Human-readable output (suppressed in --json mode)."""
        if not self.json_mode:
            print(text, file=self.stdout, flush=True)

    def json(self, obj: Any) -> None:
        """One JSON document per line (only in --json mode)."""
        if self.json_mode:
            print(json.dumps(obj, ensure_ascii=False, default=str), file=self.stdout, flush=True)

    def error(self, message: str) -> None:
        print(f"constrain: error: {message}", file=self.stderr, flush=True)

    def fail(self, exc: ConstrainError) -> None:
        if self.json_mode:
            payload: dict[str, Any] = {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
            to_dict = getattr(exc, "to_dict", None)
            if callable(to_dict):
                payload["error"].update(to_dict())
            print(json.dumps(payload, ensure_ascii=False, default=str), file=self.stdout, flush=True)
        self.error(str(exc))

    def progress(self, items: Iterable[T], total: int | None, label: str) -> Iterator[T]:
        """Yield items, drawing a counter on stderr when it is a terminal."""
        show = self.stderr.isatty()
        count = 0
        for item in items:
            yield item
            count += 1
            if show and (count % 10 == 0 or count == total):
                of = f"/{total}" if total else ""
                print(f"\r{label}: {count}{of}", end="", file=self.stderr, flush=True)
        if show and count:
            print(file=self.stderr, flush=True)


    @contextlib.contextmanager
    def when_slow(self, label: str, after: float = 1.0) -> Iterator[Callable[[str], None]]:
        """Say ``label`` on stderr once the work inside has taken ``after`` seconds (nothing when it is
        quicker); the callable it yields gives the outcome, said after it only when ``label`` was."""
        shown = threading.Event()
        started = time.monotonic()

        def announce() -> None:
            shown.set()
            print(f"constrain: {label} ...", file=self.stderr, flush=True)

        timer = threading.Timer(after, announce)
        timer.daemon = True
        outcome: list[str] = []
        timer.start()
        try:
            yield outcome.append
        finally:
            timer.cancel()
            if shown.is_set() and outcome:
                print(f"constrain: {outcome[-1]} in {time.monotonic() - started:.1f} s", file=self.stderr, flush=True)


def read_text_file(path: str) -> str:
    """Read a file (``-`` for stdin) as strict UTF-8; errors name the file and the byte offset."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
    return decode_utf8(raw, source=path)


def read_output_file(path: str) -> str:
    """A file holding one model output: its text without the single final line terminator.

    Text files end with a newline by convention; that newline is the file's, not the output's.
    Anything beyond one terminator is kept and validated.
    """
    text = read_text_file(path)
    for terminator in ("\r\n", "\n"):
        if text.endswith(terminator):
            return text[: -len(terminator)]
    return text


def decode_utf8(raw: bytes, *, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"invalid UTF-8 at byte {exc.start} (line {line}, column {column})", source=source, offset=exc.start
        ) from None
