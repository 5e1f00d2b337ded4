"""``constrain sql-grammar`` and the ``--sql`` validator of ``constrain validate``."""

from __future__ import annotations

import argparse
import contextlib
from typing import Callable

from ..errors import InputError
from ..sql import Database, Schema, SQLQuery, connect, grammar, validate
from ..sql._dialects import get_dialect
from ..sql.ask import DEFAULT_SCHEMA_BUDGET
from ._output import Output, add_json_flag, read_text_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sql-grammar", help="print the SQL grammar bound to a database's tables and columns")
    _add_schema_arguments(p)
    add_json_flag(p)
    p.set_defaults(handler=cmd_sql_grammar)


def add_schema_budget_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema-budget", type=int, default=DEFAULT_SCHEMA_BUDGET, metavar="N",
                        help=f"describe at most N tokens of schema in the prompt (default {DEFAULT_SCHEMA_BUDGET}): a larger "
                             "schema is linked to the question and only its top tables are described; 0: always the whole schema")


def _add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", metavar="DB", help="database whose schema binds the grammar: a URL, a SQLite or .duckdb file, "
                        "or a packaged name (read-only)")
    source.add_argument("--ddl", metavar="FILE.sql", help="CREATE TABLE statements describing the schema (read in --dialect)")
    parser.add_argument("--dialect", default=None, help="SQL dialect: sqlite, postgres, mysql, duckdb (default: the database's, else sqlite)")
    parser.add_argument("--schema", dest="schemas", action="append", default=[], metavar="NAME",
                        help="with --db: also read this schema's tables (NAME.table); repeatable; '*' reads every schema")


def _database_from_args(args: argparse.Namespace) -> Database | None:
    if args.dialect is not None:
        get_dialect(args.dialect)  # an unknown dialect fails before any database is opened
    if getattr(args, "schemas", None) and not args.db:
        raise InputError("--schema needs --db")
    return connect(args.db, samples=0, schemas=getattr(args, "schemas", ())) if args.db else None


def _schema_from_args(args: argparse.Namespace, database: Database | None = None) -> Schema | None:
    if database is not None:
        return database.schema
    if args.ddl:
        return Schema.from_ddl(read_text_file(args.ddl), args.dialect or "sqlite")
    return None


def cmd_sql_grammar(args: argparse.Namespace, out: Output) -> int:
    with _database_from_args(args) or contextlib.nullcontext() as database:
        schema = _schema_from_args(args, database)
    if schema is None:
        raise InputError("sql-grammar needs --db DB or --ddl FILE.sql")
    dialect = get_dialect(args.dialect or schema.dialect).name
    bound = grammar(dialect, schema=schema)
    out.line(bound.text.rstrip("\n"))
    out.json({"grammar": bound.text, "dialect": dialect, "tables": len(schema.tables)})
    return 0


# -- the `constrain validate --sql` plugin --------------------------------------------------------
def add_validator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SQL (--sql)")
    group.add_argument("--sql", action="store_true", help="validate SQL queries: grammar, sqlglot, schema, read-only policy")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--db", metavar="DB", help="with --sql: check against this database (URL, SQLite or .duckdb file, "
                        "packaged name); its engine compiles each query (EXPLAIN, read-only)")
    source.add_argument("--ddl", metavar="FILE.sql", help="with --sql: check against the tables these CREATE TABLE statements define")
    group.add_argument("--dialect", default=None, help="with --sql: SQL dialect (sqlite, postgres, mysql, duckdb; default: the database's)")
    group.add_argument("--sql-schema", dest="schemas", action="append", default=[], metavar="NAME",
                       help="with --sql --db: also read this schema's tables (NAME.table); repeatable; '*' reads every schema")


def validator_from_args(args: argparse.Namespace) -> tuple[str, Callable[[str], SQLQuery]] | None:
    if not getattr(args, "sql", False):
        if getattr(args, "db", None) or getattr(args, "ddl", None):
            raise InputError("--db and --ddl belong to --sql; add --sql")
        return None
    if args.grammar:
        raise InputError("--sql and --grammar are exclusive: --sql picks the dialect grammar itself")
    database = _database_from_args(args)
    schema = _schema_from_args(args, database)
    dialect = get_dialect(args.dialect or (schema.dialect if schema is not None else "sqlite")).name
    where = database.url if database is not None else args.ddl
    label = f"sql/{dialect}" + (f" bound to {where} ({len(schema.tables)} tables)" if schema else "")

    def check(text: str) -> SQLQuery:
        return validate(text, dialect, schema, db=database)

    return label, check
