"""Build time of schema-bound SQL grammars: 10 / 100 / 500 / 2000 tables of 20 columns each.

Every name position takes any identifier, so a schema whose names the generic terminals can spell gets
the dialect grammar itself (row "short names": only the scan of the schema's names). A schema with names
longer than 256 characters gets the dialect grammar plus those names (rows "+1 long name per table":
one 300-character column in every table). Three figures per size (medians of 3 builds, the grammar
cache cleared before each):
  text  - the schema's terminals and the grammar text (what is sent to a provider);
  lark  - the lark parser, reusing the dialect grammar's LALR table, plus its first parse (lexer set-up);
  llg   - llguidance compiling the grammar (what a provider's server does with it).
The dialect grammar itself (built once per process) is measured for reference.

    python bench/sql_grammar.py [--json]
"""

from __future__ import annotations

import time

from _common import bench_parser, emit, fmt_seconds, print_table, time_call

from constrain import Grammar
from constrain.sql import Schema
from constrain.sql import grammar as sql_grammar
from constrain.sql.grammar import _bound_grammar

SIZES = (10, 100, 500, 2000)
# llguidance refuses the grammar past about 400-800 names over 256 characters ("initial lexer
# configuration too big"): 400 such names build, 800 do not (measured)
LONG_SIZES = (10, 100, 400)
COLUMNS = 20
QUERY = "SELECT T1.column_0000_00, count(*) FROM table_0000 AS T1 JOIN table_0001 AS T2 ON T1.column_0000_01 = T2.column_0001_01 GROUP BY T1.column_0000_00"


def schema(tables: int, long_names: bool) -> Schema:
    def columns(t: int) -> dict[str, str]:
        named = {f"column_{t:04d}_{c:02d}": "INTEGER" for c in range(COLUMNS - long_names)}
        if long_names:
            named[f"a column whose name runs long, number {t:04d} " + "x" * 260] = "TEXT"
        return named

    return Schema.from_dict({f"table_{t:04d}": columns(t) for t in range(tables)})


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args()
    start = time.perf_counter()
    base = Grammar(sql_grammar("sqlite").text, parser="lalr")
    base.parse("SELECT 1")
    base_lark = time.perf_counter() - start
    start = time.perf_counter()
    base.matches("SELECT 1")
    base_llg = time.perf_counter() - start
    sql_grammar("sqlite").parse("SELECT 1")  # the packaged parser every bound grammar reuses

    rows, figures = [], {"dialect_lark_build_s": base_lark, "dialect_llg_compile_s": base_llg}
    for size, long_names in [(size, False) for size in SIZES] + [(size, True) for size in LONG_SIZES]:
        s = schema(size, long_names)

        def text() -> Grammar:
            _bound_grammar.cache_clear()
            return sql_grammar("sqlite", s)

        def lark_build() -> None:
            text().parse(QUERY)

        def llg_compile() -> None:
            text().matches(QUERY)

        t_text = time_call(text, repeat=3, warmup=0).median
        t_lark = time_call(lark_build, repeat=3, warmup=0).median - t_text
        t_llg = time_call(llg_compile, repeat=3, warmup=0).median - t_text
        size_kb = len(text().text.encode()) / 1024
        rows.append(["+1 long name per table" if long_names else "short names", size, size * COLUMNS,
                     f"{size_kb:,.0f} KiB", fmt_seconds(t_text), fmt_seconds(t_lark),
                     fmt_seconds(t_llg)])
        key = f"{'long' if long_names else 'short'}_tables_{size}"
        figures[f"{key}_text_s"] = t_text
        figures[f"{key}_lark_s"] = t_lark
        figures[f"{key}_llg_s"] = t_llg
        figures[f"{key}_grammar_bytes"] = int(size_kb * 1024)

    print(f"dialect grammar sql/sqlite: lark build {fmt_seconds(base_lark)}, llguidance compile {fmt_seconds(base_llg)}")
    print_table(["names", "tables", "columns", "grammar", "text", "lark (+1st parse)", "llguidance"], rows)
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
