"""Packaged DSLs with typed results: ``dsl/filter``, ``dsl/cron`` and ``dsl/chart``.

``constrain.load_grammar("dsl/cron").parse_typed("*/15 9-17 * * MON-FRI")`` returns a ``Cron``;
each model renders back to its DSL with ``str()``.
"""

from __future__ import annotations

from . import chart, cron, filter
from .chart import Chart, Encoding
from .cron import Cron, CronField
from .filter import And, Comparison, Expr, In, Not, Or

__all__ = [
    "And",
    "Chart",
    "Comparison",
    "Cron",
    "CronField",
    "Encoding",
    "Expr",
    "In",
    "Not",
    "Or",
    "chart",
    "cron",
    "filter",
]
