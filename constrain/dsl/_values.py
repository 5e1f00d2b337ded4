"""What a filter field name and a filter value may be: the checks the ``dsl/filter`` grammar states,
for names and values built in Python (``Comparison``, ``In``, a bound grammar's fields and enums)."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any, Union

from ..errors import InputError
from ._terminals import number_regex

Value = Union[str, bool, int, float, datetime.date]

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}")
_NUMBER = re.compile(number_regex())  # the grammar's NUMBER terminal
_MAX_STRING = 256


def _check_field(name: str) -> None:
    if not isinstance(name, str) or not _FIELD.fullmatch(name):
        raise InputError(f"not a filter field path: {name!r} (letters, digits, '_', dotted, <= 64 per part)")


def _check_value(value: Any) -> None:
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise InputError(f"filter string longer than {_MAX_STRING} characters")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise InputError("filter string contains an unpaired surrogate")
    elif isinstance(value, bool) or isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return
    elif isinstance(value, (int, float)):
        if not _NUMBER.fullmatch(render_value(value)):
            raise InputError(
                f"number {value!r} is outside the filter language (integers below 1e18; floats with integer "
                "digits + exponent <= 308)"
            )
    else:
        raise InputError(f"filter values are str, int, float, bool or datetime.date, not {type(value).__name__}")


# A text just below 1e308 (9.9999999999999999e307) reads as the float 1e308, whose repr is outside the
# language: it renders as that text instead, so every number the grammar admits renders back.
_EDGE = 1e308
_EDGE_TEXT = "9.9999999999999999e307"


def render_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and abs(value) == _EDGE:
        return _EDGE_TEXT if value > 0 else "-" + _EDGE_TEXT
    return repr(value)
