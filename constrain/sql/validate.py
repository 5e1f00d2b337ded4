"""``constrain.sql.validate``: from model text to a checked, typed ``SQLQuery``.

The walls, in order: the dialect grammar (bound to the schema when one is given) in both lark and
llguidance; sqlglot's parser for the dialect; the read-only ``Policy``; then the schema, through
sqlglot's qualifier, so that an unknown table or column is a ``SchemaError`` naming it with the closest
real names. The policy runs before the schema so that a hostile query is refused for what it does
(``PolicyError.rule``), not for a misspelt name.
"""

from __future__ import annotations

import difflib
import functools
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lark
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from ..errors import InputError, SchemaError, ValidationError
from ._dialects import get_dialect
from .grammar import bare_reserved_tables, grammar as sql_grammar
from .policy import Policy, reparse, sqlglot_error, too_deep
from ._run import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, Rows, run_sqlite
from .schema import Schema, Table

if TYPE_CHECKING:
    from .databases import Database

__all__ = ["validate", "SQLQuery", "Rows", "DEFAULT_POLICY"]

DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class SQLQuery:
    """A validated read-only query.

    ``text`` is the SQL that runs: the input itself, or, when ``rewritten`` is True, sqlglot's rendering
    of the checked expression after the changes listed in ``rewrites`` (the row cap's ``LIMIT``, or a
    double-quoted SQLite string turned into a string literal). ``original_text`` is always the input.
    ``tables`` are the catalog names of the tables read; ``columns`` the ``table.column`` pairs used
    (catalog spelling when a schema was given, as written otherwise).
    """

    text: str
    dialect: str
    expression: exp.Expression = field(repr=False, compare=False)
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    original_text: str = field(default="", repr=False)
    rewritten: bool = False
    rewrites: tuple[str, ...] = ()

    def transpile(self, dialect: str) -> str:
        """This query in another SQL dialect; raises ``ValidationError`` where sqlglot cannot say it there."""
        target = _sqlglot_dialect_name(dialect)
        try:
            return self.expression.sql(dialect=target, unsupported_level=ErrorLevel.RAISE, normalize_functions=False)
        except SqlglotError as exc:
            raise ValidationError(
                f"cannot transpile to {dialect}: {exc}", text=self.text, engine="sqlglot"
            ) from None

    def run(
        self,
        connection: Database | sqlite3.Connection | str | Path,
        *,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Rows:
        """Execute read-only and return typed rows.

        ``connection`` is a ``Database`` (``constrain.sql.connect``: the query runs in a read-only
        transaction with the engine's own time limit), an open ``sqlite3.Connection`` or a SQLite path
        (opened read-only). On SQLite, the authorizer allows reads only (and refuses the dialect's denied
        functions and system tables) and values are capped at 10 MB. Past ``timeout`` seconds the query
        is cancelled (``PolicyError(rule="timeout")``). ``max_rows`` bounds the rows fetched;
        ``Rows.truncated`` says when it cut the result.
        """
        if not isinstance(connection, (sqlite3.Connection, str, Path)):  # a Database (constrain.sql.connect)
            if connection.dialect != get_dialect(self.dialect).name:
                raise InputError(f"this query is {self.dialect}; the database is {connection.dialect} (use transpile first)")
            return connection.run(self.text, max_rows=max_rows, seconds=timeout)  # type: ignore[no-any-return]
        if get_dialect(self.dialect).name != "sqlite":
            raise InputError(f"run() executes {self.dialect} on a Database (constrain.sql.connect); this is a SQLite connection")
        return run_sqlite(self.text, connection, max_rows=max_rows, timeout=timeout)


def validate(
    text: str,
    dialect: str | None = None,
    schema: Schema | None = None,
    policy: Policy | None = DEFAULT_POLICY,
    *,
    db: Database | None = None,
    double_quoted_strings: bool = True,
) -> SQLQuery:
    """Check ``text`` with every wall and return the ``SQLQuery``; raise on the first wall that refuses.

    ``ValidationError`` (grammar: engine ``lark``/``llguidance``; ``sqlglot``), ``PolicyError`` (with
    ``rule``), ``SchemaError`` (with ``name`` and ``suggestions``). ``policy=None`` skips the policy
    (one statement is still required).

    SQLite (with a schema): a double-quoted word that names no column in scope is read as SQLite reads
    it, a string, and rewritten to single quotes (the rewrite is recorded) — unless it is a near miss of
    a column of the query's tables (``"Naem"`` beside ``Name``), which is a ``SchemaError`` naming the
    probable column. ``double_quoted_strings=False`` makes every such word an unknown column.

    ``db`` (a ``Database`` from ``constrain.sql.connect``) supplies the dialect and the schema when they
    are not given, and makes the engine the last judge: the query is compiled by the engine's own
    ``EXPLAIN`` in a read-only transaction (a ``ValidationError`` with the engine's message, located
    where the engine says). Without ``db``, a SQLite query with a schema is compiled by SQLite over an
    empty copy of the schema. ``dialect`` defaults to the database's, else the schema's, else sqlite.
    """
    if db is not None:
        dialect = dialect or db.dialect
        schema = schema if schema is not None else db.schema
        if get_dialect(dialect).name != db.dialect:
            raise InputError(f"the query is checked as {dialect}, but the database is {db.dialect}")
    dialect = dialect or (schema.dialect if schema is not None else "sqlite")
    try:
        return _validate(text, dialect, schema, policy, double_quoted_strings, db)
    except RecursionError:  # sqlglot recurses per nesting level; the policy bounds nesting first
        raise too_deep(text) from None


def _validate(text: str, dialect: str, schema: Schema | None, policy: Policy | None, double_quoted_strings: bool,
              db: Database | None = None) -> SQLQuery:
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    info = get_dialect(dialect)
    bound = sql_grammar(info.name, schema=schema)
    bound.validate(text)
    reader = sqlglot.Dialect.get_or_raise(info.sqlglot_name)
    catalog = [t.name for t in schema.tables] if schema is not None else []  # names, not paths (policy)
    known_names = ([t.name for t in schema.tables] + [t.schema for t in schema.tables if t.schema] + schema.column_names()
                   if schema is not None else [])
    tokens = policy.check_text(text, info.name, known_names) if policy is not None else None
    try:
        statements = reader.parser().parse(tokens if tokens is not None else reader.tokenize(text), text)
    except ParseError as exc:
        # sqlglot reads "SELECT * EXCEPT SELECT ..." as the star's EXCEPT modifier; no engine runs a
        # star with no FROM clause anyway: say that, where the star is
        star = _star_without_from(bound.parse(text))
        if star is not None:
            raise _star_needs_from(line=star.line, column=star.column, text=text) from None
        raise sqlglot_error(exc, text) from None
    if policy is not None:
        root = policy.check(statements, info.name, text, catalog)
    else:
        parsed = [s for s in statements if s is not None]
        if len(parsed) != 1:
            raise ValidationError(f"expected one statement, got {len(parsed)}", text=text, engine="sqlglot")
        root = parsed[0]

    rewrites: list[str] = []
    if schema is not None:
        if info.name == "sqlite" and double_quoted_strings:
            rewrites += _double_quoted_strings(root, schema, text)
        if info.unquoted_fold == "lower":
            rewrites += _folded_names(root, schema)
        rewrites += _quoted_reserved_tables(root, schema)
        tables, columns = _bind(root, schema, info.sqlglot_name, text)
    else:
        tables, columns = _names_as_written(root)
    if policy is not None and policy.apply_row_cap(root):
        rewrites.append(f"row cap: LIMIT {policy.max_rows}")
    final_text = text
    if rewrites:
        final_text = root.sql(dialect=info.sqlglot_name, normalize_functions=False)  # keep result column names
        if policy is not None:  # what runs is checked again, not assumed
            policy.check(reparse(final_text, info.sqlglot_name), info.name, final_text, catalog)
    if db is not None:
        db.explain(final_text)
    elif schema is not None and info.name == "sqlite":
        _sqlite_compiles(final_text, schema)
    return SQLQuery(
        text=final_text,
        dialect=info.name,
        expression=root,
        tables=tables,
        columns=columns,
        original_text=text,
        rewritten=bool(rewrites),
        rewrites=tuple(rewrites),
    )


# -- schema binding ---------------------------------------------------------------------------------
def _query_tables(root: exp.Expression) -> list[exp.Table]:
    ctes = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
    return [
        t
        for t in root.find_all(exp.Table)
        if t.name and not isinstance(t.this, exp.Func) and not (not t.db and t.name.lower() in ctes)
    ]


def _lookup_table(schema: Schema, node: exp.Table) -> Table | None:
    table = schema.find(node.name, node.db)
    quoted = isinstance(node.this, exp.Identifier) and node.this.quoted
    if table is not None and quoted and not schema.sql_dialect.case_insensitive and table.name != node.name:
        return None  # a quoted name keeps its case where the dialect folds only unquoted names
    return table


def _bind(root: exp.Expression, schema: Schema, sqlglot_name: str, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Resolve every table and column against ``schema``; return catalog names of both."""
    aliases: dict[str, str] = {}
    tables: dict[str, None] = {}
    for node in _query_tables(root):
        table = _lookup_table(schema, node)
        if table is None:
            raise SchemaError(
                f"unknown table {node.name!r}",
                name=node.name,
                suggestions=_closest(node.name, schema.table_names()),
                **_where(node.this, text),
            )
        tables.setdefault(table.key, None)
        aliases[node.alias_or_name.lower()] = table.key
    _check_sources(root, text)
    keyed = _keyed_tables(root, schema)
    if schema.sql_dialect.columns_case_insensitive:
        _respell_columns(keyed, [t for t in (schema.table(key) for key in tables) if t is not None])
    try:
        qualified = qualify(
            keyed, schema=_mapping_schema(schema, sqlglot_name), dialect=sqlglot_name,
            validate_qualify_columns=True,
        )
    except OptimizeError as exc:
        raise _unknown_column(str(exc), root, schema, aliases, tables, text, sqlglot_name) from None
    missed = _unresolved_column(qualified)
    if missed is not None:
        raise _unknown_column(f"Column '{missed}' could not be resolved", root, schema, aliases, tables, text, sqlglot_name)
    used: dict[str, None] = {}
    for scope in traverse_scope(qualified):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table):
                table = schema.table(source.name)
                if table is not None:
                    name = next((c for c in table.column_names() if c.lower() == column.name.lower()), column.name)
                    used.setdefault(f"{table.key}.{name}", None)
    return tuple(tables), tuple(used)


def _unresolved_column(qualified: exp.Expression) -> str | None:
    """A column sqlglot's qualifier lets through unresolved: one in QUALIFY that is no output column, or one
    inside LATERAL (...) AS s that it qualified with s itself (a lateral cannot see its own alias)."""
    for lateral in qualified.find_all(exp.Lateral):
        own = lateral.alias.lower()
        bad = next((c for c in lateral.find_all(exp.Column) if own and c.table.lower() == own), None)
        if bad is not None:
            return bad.name
    for clause in qualified.find_all(exp.Qualify):
        select = clause.parent_select
        outputs = {e.alias_or_name.lower() for e in select.expressions} if select is not None else set()
        bad = next((c for c in clause.find_all(exp.Column) if not c.table and c.name.lower() not in outputs), None)
        if bad is not None:
            return bad.name
    return None


def _keyed_tables(root: exp.Expression, schema: Schema) -> exp.Expression:
    """A copy of ``root`` for sqlglot's qualifier: every table aliased by its name as written (so a quoted
    ``"T"."c"`` finds ``"T"``), and schema-qualified tables naming their ``Table.key`` (the flat mapping
    sqlglot qualifies against; tables of the current schema just lose their qualifier)."""
    copy = root.copy()
    for node in _query_tables(copy):
        if not node.alias:  # explicit, quoted as written: sqlglot's own alias for "T" would be t (postgres)
            quoted = isinstance(node.this, exp.Identifier) and node.this.quoted
            node.set("alias", exp.TableAlias(this=exp.to_identifier(node.name, quoted=quoted)))
        if not node.db:
            continue
        table = _lookup_table(schema, node)
        if table is None:
            continue
        node.set("db", None)
        node.set("catalog", None)
        if table.schema:
            node.set("this", exp.to_identifier(table.key, quoted=True))
    return copy


def _respell_columns(root: exp.Expression, tables: list[Table]) -> None:
    """Column names written in another case than the catalog's, spelt as the catalog does (in place), where
    the dialect matches columns (and select-list aliases) in any case but sqlglot's reader of it does not
    (MySQL). An unqualified name that is an alias of the query takes the alias's spelling; a name whose
    case-folded form several spellings share stays as written."""
    spellings: dict[str, set[str]] = {}
    for table in tables:
        for name in table.column_names():
            spellings.setdefault(name.lower(), set()).add(name)
    aliases: dict[str, set[str]] = {}
    for alias in root.find_all(exp.Alias):
        aliases.setdefault(alias.alias.lower(), set()).add(alias.alias)
    for column in root.find_all(exp.Column):
        ident = column.this
        if not isinstance(ident, exp.Identifier):
            continue
        found = aliases.get(ident.name.lower()) if not column.table else None
        found = found or spellings.get(ident.name.lower(), set())
        if len(found) == 1 and ident.name not in found:
            column.set("this", exp.to_identifier(next(iter(found)), quoted=ident.quoted))


def _star_needs_from(**where: Any) -> SchemaError:
    return SchemaError("'*' needs a FROM clause: this SELECT has no table to expand", name="*", **where)


def _star_without_from(tree: lark.Tree) -> lark.Token | None:
    """The first ``*`` (or ``t.*``) of a SELECT that has no FROM clause, in the grammar's parse tree."""
    for core in tree.find_data("select_core"):
        if any(isinstance(c, lark.Tree) and c.data == "from_clause" for c in core.children):
            continue
        for item in core.find_pred(lambda t: t.data in ("star", "qualified_star")):
            return next(item.scan_values(lambda v: isinstance(v, lark.Token) and v.type == "STAR"), None)
    return None


def _check_sources(root: exp.Expression, text: str) -> None:
    """Refuse a qualifier that names no table or alias visible where it stands, and a ``*`` with no
    FROM clause to expand (SQLite: "no such column: T9.x", "no tables specified")."""
    for scope in traverse_scope(root):
        select = scope.expression
        if isinstance(select, exp.Select) and select.args.get("from_") is None and select.args.get("from") is None:
            star = next((e for e in select.expressions if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star)), None)
            if star is not None:
                raise _star_needs_from(**_where(star if isinstance(star, exp.Star) else star.this, text))
        visible: list[str] = []
        current: Any = scope
        while current is not None:
            visible += [name.lower() for name in current.sources]
            current = current.parent
        for column in select.find_all(exp.Column):
            if column.table and _scope_of(column, scope) and column.table.lower() not in visible:
                shown = sorted({n for n in scope.sources})
                raise SchemaError(
                    f"{column.table!r} is not a table or alias of this query's FROM clause"
                    + (f" (it has {', '.join(shown)})" if shown else " (there is no FROM clause)"),
                    name=column.table,
                    suggestions=_closest(column.table, shown),
                    **_where(column.args.get("table"), text),
                )


def _scope_of(column: exp.Column, scope: Any) -> bool:
    """Whether ``column`` belongs to ``scope`` itself rather than to a subquery nested in it."""
    node = column.parent
    while node is not None and node is not scope.expression:
        if isinstance(node, (exp.Select, exp.SetOperation)):
            return False
        node = node.parent
    return node is scope.expression


@functools.lru_cache(maxsize=32)
def _mapping_schema(schema: Schema, sqlglot_name: str) -> MappingSchema:
    """sqlglot's view of ``schema``, built once per schema (type parsing dominates otherwise)."""
    # sqlglot reads the keys as SQL: quoted, every name stays itself (" a", "0 ", "Qty" in postgres)
    mapping = {_sqlite_quote(table): {_sqlite_quote(column): kind for column, kind in columns.items()}
               for table, columns in schema.to_sqlglot_mapping().items()}
    return MappingSchema(mapping, dialect=sqlglot_name)


_COLUMN_MESSAGE = re.compile(r"Column '(?P<name>.+?)' could not be resolved(?: for table: '(?P<table>.+?)')?|Unknown column: (?P<bare>\S+)")


def _unknown_column(
    message: str, root: exp.Expression, schema: Schema, aliases: dict[str, str], tables: dict[str, None], text: str,
    sqlglot_name: str,
) -> ValidationError:
    found = _COLUMN_MESSAGE.search(message)
    if found is None:
        return ValidationError(f"sqlglot cannot resolve the query against the schema: {message}", text=text, engine="sqlglot")
    name = (found.group("name") or found.group("bare") or "").strip('"`')
    qualifier = (found.group("table") or "").strip('"`').lower()
    named = [c for c in root.find_all(exp.Column) if c.name.lower() == name.lower() and (not qualifier or c.table.lower() == qualifier)]

    def lacks_it(column: exp.Column) -> bool:  # sqlglot may not say which one it could not resolve
        table = schema.table(aliases.get(column.table.lower(), "")) if column.table else None
        return table is not None and all(c.lower() != name.lower() for c in table.column_names())

    node = next((c for c in named if lacks_it(c)), next((c for c in named if not c.table), named[0] if named else None))
    if node is not None:  # as written, not as sqlglot normalised it
        name, qualifier = node.name, node.table.lower()
    in_scope = [aliases[qualifier]] if qualifier in aliases else list(tables)
    owners = [t for t in in_scope if any(c.lower() == name.lower() for c in schema.table(t).column_names())]  # type: ignore[union-attr]
    if not qualifier and len(owners) > 1:
        return SchemaError(
            f"ambiguous column {name!r}: {', '.join(owners)} all have it; qualify it",
            name=name,
            suggestions=[f"{t}.{name}" for t in owners],
            **_where(node.this if node is not None else None, text),
        )
    candidates = [c for t in in_scope for c in schema.table(t).column_names()]  # type: ignore[union-attr]
    where = f" of {aliases[qualifier]}" if qualifier in aliases else (f" in {', '.join(in_scope)}" if in_scope else " (no table is in scope)")
    # the column a model wanted often lives in another table: one the query has (write its qualifier),
    # or one it did not join (join it in, along a foreign key when there is one)
    written = {t.alias_or_name.lower(): t.alias_or_name for t in root.find_all(exp.Table)}
    owns = [t for t in schema.tables if any(c.lower() == name.lower() for c in t.column_names())]
    present = [f"{written.get(a, a)}.{name}" for a, t in aliases.items()
               if t not in in_scope and any(t == o.name for o in owns)]
    elsewhere = [t.key for t in owns if t.key not in in_scope and t.key not in tables]
    hint = f"; use {' or '.join(present[:3])} (in this query)" if present else ""
    joins: list[str] = []
    if elsewhere:
        hint += f"; {', '.join(elsewhere[:3])} {'has' if len(elsewhere) == 1 else 'have'} it (join it in)"
        joins = [j for j in (_join_by_key(schema, t, list(tables), aliases, written) for t in elsewhere[:3]) if j]
        if joins:
            hint += f": {'; or '.join(joins)}"
    joined = present[:3] + [f"{t}.{name}" for t in elsewhere[:3]]
    return SchemaError(
        f"unknown column {name!r}{where}{hint}",
        name=name,
        # unqualified: the other table first; qualified, the writer chose the table: its close names first
        suggestions=(_closest(name, candidates) + joined) if qualifier else (joined + _closest(name, candidates)),
        fix=_one_fix(root, node, present, joins, sqlglot_name),
        **_where(node.this if node is not None else None, text),
    )


def _one_fix(root: exp.Expression, node: exp.Column | None, present: list[str], joins: list[str],
             sqlglot_name: str) -> str | None:
    """The query with the one change an unknown column's message proposes, when it proposes exactly one:
    the qualifier of the only table of the query that has the column (the smaller change, so it goes
    first), else the only join a foreign key gives (added to the SELECT that names the column)."""
    if node is None or not (len(present) == 1 or (not present and len(joins) == 1)):
        return None
    fixed = root.copy()
    column = next(c for original, c in zip(root.find_all(exp.Column), fixed.find_all(exp.Column)) if original is node)
    if present:
        qualifier = present[0].rsplit(".", 1)[0]
        column.set("table", exp.to_identifier(qualifier))
    else:
        select = column.find_ancestor(exp.Select)
        if select is None:
            return None
        table, on = joins[0].removeprefix("JOIN ").split(" ON ", 1)
        select.join(sqlglot.parse_one(table, read=sqlglot_name, into=exp.Table), on=on, dialect=sqlglot_name, copy=False)
    try:
        return fixed.sql(dialect=sqlglot_name, normalize_functions=False)
    except SqlglotError:
        return None


def _join_by_key(schema: Schema, wanted: str, in_scope: list[str], aliases: dict[str, str], written: dict[str, str]) -> str:
    """``JOIN wanted ON ...`` along a foreign key between ``wanted`` and a table of the query, or ""."""
    target, quote = schema.table(wanted), schema.sql_dialect.quote
    if target is None:
        return ""
    for name in in_scope:
        present = schema.table(name)
        if present is None:
            continue
        # the table as the query calls it: its alias when it has one
        shown = next((written.get(a, a) for a, t in aliases.items() if t == name and a != name.lower()), name)
        links = [(fk.columns, fk.ref_columns) for fk in present.foreign_keys
                 if fk.ref_key.lower() == wanted.lower()]
        links += [(fk.ref_columns, fk.columns) for fk in target.foreign_keys
                  if fk.ref_key.lower() == name.lower()]
        for mine, theirs in links:
            if mine and len(mine) == len(theirs) and all(mine) and all(theirs):
                on = " AND ".join(f"{quote(shown)}.{quote(a)} = {quote(target.name)}.{quote(b)}" for a, b in zip(mine, theirs))
                return f"JOIN {schema.quoted(target)} ON {on}"
    return ""


def _quoted_reserved_tables(root: exp.Expression, schema: Schema) -> list[str]:
    """A catalog table named by a word the dialect reserves (DuckDB's ``show``) is admitted bare by the
    schema-bound grammar, as models write it; the engine needs it quoted, so quote it (and its use as a
    column's qualifier), as the catalog spells it."""
    dialect = schema.sql_dialect
    bare = bare_reserved_tables(dialect, [t.name for t in schema.tables])
    if not bare:
        return []
    spelling = {t.name.lower(): t.name for t in schema.tables if not t.schema}
    changes: list[str] = []
    nodes = [(node, "this") for node in _query_tables(root) if not node.db]
    nodes += [(column, "table") for column in root.find_all(exp.Column) if not column.args.get("db")]
    for node, key in nodes:
        ident = node.args.get(key)
        if isinstance(ident, exp.Identifier) and not ident.quoted and ident.name.lower() in bare and ident.name.lower() in spelling:
            table = spelling[ident.name.lower()]
            changes.append(f"unquoted {ident.name} read as {dialect.quote(table)} (a reserved word in {dialect.name})")
            node.set(key, exp.to_identifier(table, quoted=True))
    return list(dict.fromkeys(changes))


def _double_quoted_strings(root: exp.Expression, schema: Schema, text: str) -> list[str]:
    """SQLite reads a double-quoted word that names no column in scope as a string (its "DQS" rule).

    Turn those into string literals so the checked expression, its transpilations and the SQL that runs
    all say what SQLite would have done; a word that is a near miss of a column of the query's tables is
    refused instead, since a misspelt column read as a constant would silently change the answer.
    """
    columns: dict[str, str] = {}
    for node in _query_tables(root):
        table = schema.table(node.name)
        if table is not None:
            columns.update({c.lower(): c for c in table.column_names()})
    known = set(columns)
    known.update(a.alias.lower() for a in root.find_all(exp.Alias))
    known.update(a.alias_or_name.lower() for a in root.find_all(exp.CTE))
    changes = []
    for column in list(root.find_all(exp.Column)):
        ident = column.this
        if isinstance(ident, exp.Identifier) and ident.quoted and not column.table and ident.name.lower() not in known:
            near = [name for lower, name in columns.items() if _near_miss(ident.name.lower(), lower)]
            if near:
                raise SchemaError(
                    f'"{ident.name}" names no column, and is too close to column {near[0]!r} to be read as a string; '
                    f"write the column as {near[0]} or the string in single quotes",
                    name=ident.name,
                    suggestions=near,
                    **_where(ident, text),
                )
            column.replace(exp.Literal.string(ident.name))
            changes.append(f'double-quoted "{ident.name}" read as a string literal (names no column)')
    return changes


def _folded_names(root: exp.Expression, schema: Schema) -> list[str]:
    """PostgreSQL folds an unquoted name to lower case: ``Name`` means ``name``, and a catalog column spelt
    ``"Name"`` is unreachable without quotes. A model (or a person) writing ``Name`` for the column the
    schema shows as ``"Name"`` means that column; quote it, as the catalog spells it, when exactly one
    name of the query's tables (or, for a table, of the schema) matches it ignoring case and none matches
    its folded form. Aliases and CTE names fold alike on both sides, so they are left alone."""
    changes: list[str] = []
    own = {a.alias.lower() for a in root.find_all(exp.Alias)} | {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}
    renamed: dict[str, str] = {}  # a table written without alias: its folded name -> the catalog spelling
    tables: list[Table] = []
    for node in _query_tables(root):
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            continue
        table = _folded_match(ident, [t.name for t in schema.tables if bool(t.schema) == bool(node.db)])
        if table is not None:
            changes.append(f"unquoted {ident.name} read as {schema.sql_dialect.quote(table)} (PostgreSQL folds unquoted names to lower case)")
            if not node.alias:
                renamed[ident.name.lower()] = table
            node.set("this", exp.to_identifier(table, quoted=True))
        found = schema.find(node.this.name, node.db)
        if found is not None:
            tables.append(found)
    names = [c for t in tables for c in t.column_names()]
    for column in root.find_all(exp.Column):
        qualifier = column.args.get("table")
        if isinstance(qualifier, exp.Identifier) and not qualifier.quoted and qualifier.name.lower() in renamed:
            column.set("table", exp.to_identifier(renamed[qualifier.name.lower()], quoted=True))
        ident = column.this
        if not isinstance(ident, exp.Identifier) or ident.name.lower() in own:
            continue
        spelt = _folded_match(ident, names)
        if spelt is not None:
            changes.append(f"unquoted {ident.name} read as {schema.sql_dialect.quote(spelt)} (PostgreSQL folds unquoted names to lower case)")
            column.set("this", exp.to_identifier(spelt, quoted=True))
    return list(dict.fromkeys(changes))


def _folded_match(ident: exp.Identifier, names: list[str]) -> str | None:
    """The one catalog name an unquoted ``ident`` meant when its folded form names nothing, else None."""
    if ident.quoted:
        return None
    folded = ident.name.lower()
    if folded in names:
        return None
    matches = {n for n in names if n.lower() == folded}
    return matches.pop() if len(matches) == 1 else None


def _near_miss(word: str, column: str) -> bool:
    """Whether ``word`` is within a typo of ``column``: one edit (insert, delete, substitute, or swap of
    neighbours) for names of 4 to 7 characters, two from 8 on; shorter names are left alone (too many
    real values are one letter from a short column name). A value that is the column's name with a number
    added (``"region0"``, ``"Division 1"``: Spider's gold SQL has both) is a value, not a typo."""
    longer, shorter = (word, column) if len(word) >= len(column) else (column, word)
    if longer.startswith(shorter) and longer[len(shorter):].strip(" _-").isdigit():
        return False
    shortest = min(len(word), len(column))
    allowed = 2 if shortest >= 8 else 1 if shortest >= 4 else 0
    return allowed > 0 and abs(len(word) - len(column)) <= allowed and _edit_distance(word, column, allowed) <= allowed


def _edit_distance(a: str, b: str, bound: int) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b`` (anything above ``bound`` reads as bound + 1)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        previous2, previous = previous, current
    return previous[-1]


def _names_as_written(root: exp.Expression) -> tuple[tuple[str, ...], tuple[str, ...]]:
    tables = tuple(dict.fromkeys(t.name for t in _query_tables(root)))
    aliases = {t.alias_or_name.lower(): t.name for t in _query_tables(root)}
    columns = []
    for column in root.find_all(exp.Column):
        owner = aliases.get(column.table.lower(), column.table) if column.table else (tables[0] if len(tables) == 1 else "")
        columns.append(f"{owner}.{column.name}" if owner else column.name)
    return tables, tuple(dict.fromkeys(columns))


def _closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    by_lower = {c.lower(): c for c in candidates}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)]


def _where(node: exp.Expression | None, text: str) -> dict[str, Any]:
    meta = getattr(node, "meta", None) or {}
    if "line" not in meta:
        return {"text": text, "engine": "schema"}
    start = meta.get("start")
    column = meta["col"] - (meta["end"] - meta["start"]) if "end" in meta and "start" in meta else meta["col"]
    return {"text": text, "engine": "schema", "line": meta["line"], "column": column, "offset": start}


# -- SQLite's own compiler ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _empty_catalog(schema: Schema) -> tuple[sqlite3.Connection, threading.Lock] | None:
    """An in-memory SQLite database holding the schema's tables, empty, to compile queries against
    (None when SQLite cannot hold the schema: a name it reserves)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    created: set[str] = set()
    try:
        for namespace in sorted({t.schema.lower() for t in schema.tables if t.schema} - {"main", "temp"}):
            conn.execute(f"ATTACH DATABASE ':memory:' AS {_sqlite_quote(namespace)}")  # schema.table names
        for table in schema.tables:
            key = f"{table.schema}.{table.name}".lower()
            if key in created:
                continue
            created.add(key)
            columns = {c.name.lower(): c.name for c in table.columns}.values()
            name = f"{_sqlite_quote(table.schema)}.{_sqlite_quote(table.name)}" if table.schema else _sqlite_quote(table.name)
            conn.execute(f"CREATE TABLE {name} ({', '.join(_sqlite_quote(c) for c in columns)})")
    except sqlite3.Error:
        conn.close()
        return None
    return conn, threading.Lock()


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_compiles(text: str, schema: Schema) -> None:
    """Compile ``text`` with SQLite (``EXPLAIN`` over the empty catalog): what a grammar and a name check
    cannot see — a sub-select returning several columns where one is expected, an aggregate in WHERE,
    UNION sides of different widths, a function's argument count — is refused here, not at run time."""
    catalog = _empty_catalog(schema)
    if catalog is None:
        return
    conn, lock = catalog
    with lock:
        try:
            conn.execute("EXPLAIN " + text).close()
        except sqlite3.Error as exc:
            raise ValidationError(f"SQLite refuses the query: {exc}", text=text, engine="sqlite") from None


# -- running ----------------------------------------------------------------------------------------
def _sqlglot_dialect_name(dialect: str) -> str:
    try:
        return get_dialect(dialect).sqlglot_name
    except InputError:
        try:
            sqlglot.Dialect.get_or_raise(dialect)
        except ValueError:
            raise InputError(f"unknown SQL dialect {dialect!r}") from None
        return dialect
