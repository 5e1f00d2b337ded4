"""The repetition guard: an output that ends with one span written over and over has stopped saying
anything new (a small model looping under a grammar that lets it: ``6,12,15,...,57,6,12,15,...``).

Decoding ends such an attempt early (``TruncatedError.repeated``) instead of spending the rest of its
token bound, and the generate loop re-asks with that reason. The thresholds keep legitimate repetition
(``[0,0,0,0]``, a short list of equal items) out of reach: the span must be written ``MIN_REPEATS``
times in a row and the repeats must cover ``MIN_CHARS`` characters together.
"""

from __future__ import annotations

__all__ = ["RepetitionGuard", "repeated_span", "MIN_REPEATS", "MIN_CHARS", "MAX_PERIOD"]

MIN_REPEATS = 4
MIN_CHARS = 40
MAX_PERIOD = 160  # longest span looked for, in characters


def repeated_span(text: str) -> str | None:
    """The shortest span that ``text`` ends with, written at least ``MIN_REPEATS`` times in a row and
    covering at least ``MIN_CHARS`` characters; None when there is none."""
    n = len(text)
    for period in range(1, min(MAX_PERIOD, n // MIN_REPEATS) + 1):
        repeats = max(MIN_REPEATS, -(-MIN_CHARS // period))
        if repeats * period > n:
            continue
        span = text[n - period :]
        if text.endswith(span * repeats):
            return span
    return None


class RepetitionGuard:
    """Fed the output piece by piece; ``repeated`` is set once the output loops (see ``repeated_span``)."""

    _KEEP = MAX_PERIOD * MIN_REPEATS  # enough text to see the longest span repeated

    def __init__(self) -> None:
        self._tail = ""
        self.repeated: str | None = None

    def feed(self, piece: str) -> bool:
        """Add ``piece``; True when the output now loops."""
        if piece and self.repeated is None:
            self._tail = (self._tail + piece)[-self._KEEP :]
            self.repeated = repeated_span(self._tail)
        return self.repeated is not None
