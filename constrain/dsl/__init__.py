"""Packaged DSLs with typed results: ``dsl/filter``, ``dsl/cron`` and ``dsl/chart``.

``constrain.load_grammar("dsl/cron").parse_typed("*/15 9-17 * * MON-FRI")`` returns a ``Cron``;
each model renders back to its DSL with ``str()``. ``filter.grammar(fields)`` and ``chart.grammar(fields)``
bind those two languages to your data's fields (``fields_spec``, ``fields_of_table``, ``load_fields``).

May import: ``constrain.json_schema``, ``constrain.grammar``, ``constrain._databases``, ``constrain.errors``.
"""

from __future__ import annotations

from . import chart, cron, filter
from ._fields import Field, field_list, fields_of_table, fields_spec, load_fields
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
    "Field",
    "In",
    "Not",
    "Or",
    "chart",
    "cron",
    "field_list",
    "fields_of_table",
    "fields_spec",
    "filter",
    "load_fields",
]
