"""``constrain sql-grammar`` and the ``--sql`` validator of ``constrain validate``."""

from __future__ import annotations

import argparse
from typing import Callable

from ..errors import InputError
from ..sql import Schema, SQLQuery, grammar, validate
from ..sql._dialects import get_dialect
from ._output import Output, add_json_flag, read_text_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sql-grammar", help="print the SQL grammar bound to a database's tables and columns")
    _add_schema_arguments(p)
    add_json_flag(p)
    p.set_defaults(handler=cmd_sql_grammar)


def _add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", metavar="FILE.sqlite", help="SQLite database whose schema binds the grammar (opened read-only)")
    source.add_argument("--ddl", metavar="FILE.sql", help="CREATE TABLE statements describing the schema (read in --dialect)")
    parser.add_argument("--dialect", default="sqlite", help="SQL dialect: sqlite (default), postgres, duckdb")


def _schema_from_args(args: argparse.Namespace) -> Schema | None:
    get_dialect(args.dialect)  # an unknown dialect fails before any file is read
    if args.db:
        return Schema.from_sqlite(args.db)
    if args.ddl:
        return Schema.from_ddl(read_text_file(args.ddl), args.dialect)
    return None


def cmd_sql_grammar(args: argparse.Namespace, out: Output) -> int:
    schema = _schema_from_args(args)
    if schema is None:
        raise InputError("sql-grammar needs --db FILE.sqlite or --ddl FILE.sql")
    bound = grammar(args.dialect, schema=schema)
    out.line(bound.text.rstrip("\n"))
    out.json({"grammar": bound.text, "dialect": args.dialect, "tables": len(schema.tables)})
    return 0


# -- the `constrain validate --sql` plugin --------------------------------------------------------
def add_validator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SQL (--sql)")
    group.add_argument("--sql", action="store_true", help="validate SQL queries: grammar, sqlglot, schema, read-only policy")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--db", metavar="FILE.sqlite", help="with --sql: check tables and columns against this SQLite database")
    source.add_argument("--ddl", metavar="FILE.sql", help="with --sql: check against the tables these CREATE TABLE statements define")
    group.add_argument("--dialect", default="sqlite", help="with --sql: SQL dialect (sqlite, postgres, duckdb)")


def validator_from_args(args: argparse.Namespace) -> tuple[str, Callable[[str], SQLQuery]] | None:
    if not getattr(args, "sql", False):
        if getattr(args, "db", None) or getattr(args, "ddl", None):
            raise InputError("--db and --ddl belong to --sql; add --sql")
        return None
    if args.grammar:
        raise InputError("--sql and --grammar are exclusive: --sql picks the dialect grammar itself")
    dialect = get_dialect(args.dialect).name
    schema = _schema_from_args(args)
    label = f"sql/{dialect}" + (f" bound to {args.db or args.ddl} ({len(schema.tables)} tables)" if schema else "")

    def check(text: str) -> SQLQuery:
        return validate(text, dialect, schema)

    return label, check
