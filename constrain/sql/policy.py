"""The read-only SQL policy: the second wall behind the grammar.

A ``Policy`` inspects a query that sqlglot has already parsed and refuses anything that is not one
read-only ``SELECT`` (or ``WITH ... SELECT``): stacked statements, data-modifying or administrative
statements anywhere in the tree, comments, text that only looks like SQL keywords, functions that reach
the file system, the network, the server process or its settings, and the system catalogs. What each
dialect considers dangerous is data (``DIALECT_RULES``), one record per dialect. A row cap is applied
as a ``LIMIT`` that is added or lowered, never raised.

Every refusal is a ``PolicyError`` whose ``rule`` names the rule that was broken.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from ..errors import PolicyError, ValidationError
from ._dialects import get_dialect

__all__ = ["Policy", "DialectRules", "DIALECT_RULES", "RULES"]

RULES: dict[str, str] = {
    "length": "the query text is longer than the policy allows",
    "control_character": "the query contains a control character (NUL, escape, ...)",
    "non_ascii": "a keyword or bare identifier contains non-ASCII characters (look-alike letters)",
    "comment": "the query contains a comment",
    "literal_size": "a literal is longer than the policy allows",
    "nesting": "parentheses nest deeper than the policy allows",
    "single_statement": "more than one statement",
    "statement_type": "the statement is not a SELECT or WITH ... SELECT",
    "write": "a data-modifying, administrative or locking clause appears inside the query",
    "recursive_cte": "a recursive common table expression",
    "function": "a function the dialect denylist forbids",
    "system_table": "a system catalog table or schema",
    "variable": "a server, session or user variable (@@version, @x): server state outside the data",
    "file_access": "a table name that the dialect would read as a file path",
    "table_allowlist": "a table outside the policy's table allowlist",
    "timeout": "the query ran longer than the time limit (SQLQuery.run)",
    "authorizer": "SQLite's authorizer refused an action while running (SQLQuery.run)",
}
"""Each rule a ``PolicyError`` can name, with what it refuses."""


@dataclass(frozen=True)
class DialectRules:
    """What is dangerous in one dialect, as data.

    ``denied_functions`` are exact lower-case names; ``denied_function_prefixes`` cover families
    (``pg_read_`` ...). ``system_tables`` / ``system_table_prefixes`` / ``system_schemas`` name the
    catalogs. ``file_table_pattern`` matches table names the engine would open as files.
    ``variable_nodes`` are the sqlglot expression types that read or set server, session or user
    variables in the dialect (MySQL's ``@@version``, ``@x``).
    """

    denied_functions: frozenset[str]
    denied_function_prefixes: tuple[str, ...] = ()
    system_tables: frozenset[str] = frozenset()
    system_table_prefixes: tuple[str, ...] = ()
    system_schemas: frozenset[str] = frozenset()
    file_table_pattern: re.Pattern[str] | None = None
    variable_nodes: tuple[type[exp.Expression], ...] = ()

    def function_denied(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.denied_functions or lowered.startswith(self.denied_function_prefixes)

    def table_is_system(self, name: str, schema: str) -> bool:
        lowered = name.lower()
        return (
            schema.lower() in self.system_schemas
            or lowered in self.system_tables
            or lowered.startswith(self.system_table_prefixes)
        )


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Why each entry is here:
#  sqlite  load_extension loads native code; readfile/writefile/edit/fsdir/lsdir/zipfile/sqlar_* are the
#          shell's file I/O and archive extensions; fts3_tokenizer exposes raw pointers (CVE-2019-8457
#          family, and it is how load-extension-free code execution was demonstrated); sqlite_dbpage /
#          sqlite_dbdata / dbstat read raw pages; zeroblob/randomblob allocate up to 1 GB; pragma_*
#          table-valued functions are PRAGMA in disguise; sqlite_compileoption_* / sqlite_source_id
#          fingerprint the build.
#  postgres pg_read_file / pg_read_binary_file / pg_ls_* / pg_stat_file read the server's disk;
#          lo_import / lo_export / lo_* move files through large objects; dblink* / postgres_fdw open
#          connections (and run arbitrary SQL remotely); pg_sleep* stall the server; pg_terminate /
#          cancel_backend, pg_reload_conf, pg_rotate_logfile, pg_switch_wal, set_config, pg_promote
#          act on the server; nextval / setval / txid_current / pg_current_xact_id write; pg_advisory_*
#          take locks; pg_notify / pg_logical_emit_message have side effects; query_to_xml and the other
#          *_to_xml functions execute a query given as a string, bypassing any parse-level check.
#  duckdb  read_* / *_scan / glob / sniff_csv / parquet_* read files and URLs (file, http, s3);
#          *_attach attach databases; getenv leaks the environment; query / query_table run SQL from a
#          string; duckdb_* table functions expose settings, secrets and extensions; pragma_* as above;
#          postgres_* / mysql_* / sqlite_* (scanner extensions) reach other databases, and postgres_query /
#          postgres_execute / mysql_query / mysql_execute run SQL there; json_execute_serialized_sql runs
#          SQL given as a string; which_secret names secrets; version fingerprints the build (as in postgres).
#  mysql   sleep / benchmark stall the server; load_file reads the server's disk; get_lock and the other
#          *_lock functions take named locks; master_pos_wait / source_pos_wait / master_gtid_wait /
#          wait_for_executed_gtid_set block on replication; sys_exec / sys_eval / sys_get / sys_set are
#          lib_mysqludf_sys's shell and environment access; last_insert_id(x) sets session state;
#          version (sqlglot's CurrentVersion) fingerprints the build, as in postgres. @@system and @user
#          variables (sqlglot's SessionParameter / Parameter) read or set server state: rule "variable".
#          mysql, information_schema, performance_schema and sys are the system schemas.
#  postgres also: current_version is sqlglot's name for version(); pg_stat_reset*, replication-slot and
#          backup functions (pg_create_* / pg_drop_* / pg_replication_* / pg_logical_* / pg_backup_*
#          / pg_start_backup / pg_stop_backup / pg_wal_replay_* / pg_copy_*) act on the server.
DIALECT_RULES: dict[str, DialectRules] = {
    "sqlite": DialectRules(
        denied_functions=_names(
            """load_extension readfile writefile edit fsdir lsdir zipfile fts3_tokenizer fts5_tokenizer
            sqlite_dbpage sqlite_dbdata sqlite_dbptr dbstat zeroblob randomblob sqlite_compileoption_get
            sqlite_compileoption_used sqlite_source_id sqlar_compress sqlar_uncompress shell"""
        ),
        denied_function_prefixes=("pragma_",),
        system_tables=_names("sqlite_master sqlite_schema sqlite_temp_master sqlite_temp_schema sqlite_sequence"),
        system_table_prefixes=("sqlite_stat", "pragma_"),
        system_schemas=_names("temp"),
    ),
    "postgres": DialectRules(
        denied_functions=_names(
            """pg_read_file pg_read_binary_file pg_stat_file pg_sleep pg_sleep_for pg_sleep_until
            pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_switch_wal
            pg_promote pg_create_restore_point pg_notify pg_logical_emit_message set_config
            current_setting nextval setval txid_current pg_current_xact_id query_to_xml
            query_to_xmlschema query_to_xml_and_xmlschema cursor_to_xml cursor_to_xmlschema
            table_to_xml table_to_xmlschema table_to_xml_and_xmlschema schema_to_xml
            database_to_xml version current_version pg_export_snapshot pg_log_backend_memory_contexts
            pg_import_system_collations"""
        ),
        denied_function_prefixes=("pg_ls_", "pg_read_", "pg_file_", "lo_", "dblink", "pg_advisory", "pg_try_advisory",
                                  "postgres_fdw", "pg_stat_reset", "pg_create_", "pg_drop_", "pg_replication_",
                                  "pg_logical_", "pg_backup_", "pg_start_backup", "pg_stop_backup", "pg_wal_replay_",
                                  "pg_copy_"),
        system_table_prefixes=("pg_",),
        system_schemas=_names("pg_catalog information_schema pg_toast"),
    ),
    "duckdb": DialectRules(
        denied_functions=_names(
            """read_csv read_csv_auto read_parquet parquet_scan read_json read_json_auto read_json_objects
            read_json_objects_auto read_ndjson read_ndjson_auto read_ndjson_objects read_text read_blob
            read_xlsx glob sniff_csv parquet_metadata parquet_schema parquet_file_metadata
            parquet_kv_metadata iceberg_scan iceberg_metadata delta_scan sqlite_scan sqlite_attach
            postgres_scan postgres_attach mysql_scan st_read getenv query query_table current_setting
            load_extension st_read_meta json_execute_serialized_sql which_secret version current_version"""
        ),
        denied_function_prefixes=("duckdb_", "pragma_", "read_", "postgres_", "mysql_", "sqlite_", "iceberg_",
                                  "delta_"),
        system_tables=_names("sqlite_master sqlite_schema sqlite_temp_master"),
        system_table_prefixes=("duckdb_", "pg_"),
        system_schemas=_names("information_schema pg_catalog system temp"),
        # DuckDB replacement scans read `FROM 'data.csv'` or `FROM "s3://b/x.parquet"` as a file.
        file_table_pattern=re.compile(r"[./\\:]|\.(csv|tsv|parquet|json|ndjson|jsonl|xlsx|gz|zst)$", re.IGNORECASE),
    ),
    "mysql": DialectRules(
        denied_functions=_names(
            """sleep benchmark load_file get_lock release_lock release_all_locks is_free_lock is_used_lock
            master_pos_wait source_pos_wait master_gtid_wait wait_for_executed_gtid_set
            wait_until_sql_thread_after_gtids sys_exec sys_eval sys_get sys_set last_insert_id version
            current_version"""
        ),
        system_schemas=_names("mysql information_schema performance_schema sys"),
        variable_nodes=(exp.SessionParameter, exp.Parameter),
    ),
}

# Statement nodes that must never appear anywhere in a read-only query (postgres allows DML in WITH).
_WRITE_NODES: tuple[type[exp.Expression], ...] = (
    exp.DML,
    exp.DDL,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Copy,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Set,
    exp.Use,
    exp.Install,
    exp.LoadData,
    exp.Grant,
    exp.Revoke,
    exp.Analyze,
    exp.Kill,
    exp.Cache,
    exp.Uncache,
    exp.Refresh,
    exp.Comment,
    exp.Declare,
    exp.Export,
    exp.Into,  # SELECT ... INTO creates a table (postgres, duckdb)
    exp.Lock,  # SELECT ... FOR UPDATE takes row locks
)
_READ_ROOTS: tuple[type[exp.Expression], ...] = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\ufeff]")
def _refuse_control(control: re.Match[str], text: str) -> None:
    name = unicodedata.name(control.group(), f"U+{ord(control.group()):04X}")
    _refuse("control_character", f"control character {name} at offset {control.start()}", text, control.start())


_QUOTED_TOKENS = frozenset({TokenType.STRING, TokenType.IDENTIFIER, TokenType.NATIONAL_STRING, TokenType.RAW_STRING})


@dataclass(frozen=True)
class Policy:
    """The read-only policy applied by ``constrain.sql.validate`` (on by default).

    ``max_rows`` caps the rows a query may return by adding or lowering its ``LIMIT`` (never raising
    it); ``None`` leaves the query's own ``LIMIT`` alone. ``tables`` is an optional allowlist of table
    names (matched as the dialect compares identifiers). ``allow_recursive`` admits
    ``WITH RECURSIVE`` (off: a recursive CTE without a bound runs forever). ``extra_denied_functions``
    extends the dialect's denylist.
    """

    max_rows: int | None = None
    tables: frozenset[str] | None = None
    max_length: int = 16_384
    max_literal_length: int = 1_024
    max_nesting: int = 40
    allow_recursive: bool = False
    extra_denied_functions: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.max_rows is not None and (not isinstance(self.max_rows, int) or self.max_rows < 0):
            raise ValueError(f"max_rows must be a non-negative int or None, got {self.max_rows!r}")
        if self.tables is not None:
            object.__setattr__(self, "tables", frozenset(self.tables))
        object.__setattr__(self, "extra_denied_functions", frozenset(f.lower() for f in self.extra_denied_functions))

    # -- the checks ---------------------------------------------------------------------------------
    def check_text(self, text: str, dialect: str = "sqlite", known_names: Iterable[str] = ()) -> list[Token]:
        """Checks on the raw text and its tokens; returns the tokens for the parser.

        ``known_names`` (a schema's tables and columns) may be written quoted whatever they hold: a control
        character or a length over ``max_literal_length`` inside a quoted name the catalog has is not
        hidden text but that name."""
        data_length = len(text.encode("utf-8"))
        if data_length > self.max_length:
            _refuse("length", f"query is {data_length:,} bytes, over the policy limit of {self.max_length:,}", text)
        try:
            tokens = sqlglot.tokenize(text, read=get_dialect(dialect).sqlglot_name)
        except TokenError as exc:
            control = _CONTROL.search(text)
            if control:
                _refuse_control(control, text)
            raise ValidationError(f"sqlglot cannot tokenize the query: {exc}", text=text, engine="sqlglot") from None
        known = {name.lower() for name in known_names}
        catalog_spans = [(t.start, t.end) for t in tokens
                         if t.token_type == TokenType.IDENTIFIER and t.text.lower() in known]
        for control in _CONTROL.finditer(text):
            if not any(start <= control.start() <= end for start, end in catalog_spans):
                _refuse_control(control, text)
        for token in tokens:
            if token.comments:
                _refuse("comment", f"comment near {token.text!r} (comments can hide a second statement)", text, token.start)
            if token.token_type in _QUOTED_TOKENS:
                if len(token.text) > self.max_literal_length and (token.start, token.end) not in catalog_spans:
                    _refuse(
                        "literal_size",
                        f"literal of {len(token.text):,} characters, over the policy limit of {self.max_literal_length:,}",
                        text,
                        token.start,
                    )
            elif not token.text.isascii():
                _refuse("non_ascii", f"non-ASCII word {token.text!r} outside quotes", text, token.start)
            elif token.token_type == TokenType.NUMBER and len(token.text) > self.max_literal_length:
                _refuse("literal_size", f"number of {len(token.text):,} digits", text, token.start)
        depth = 0
        for token in tokens:
            depth += (token.token_type == TokenType.L_PAREN) - (token.token_type == TokenType.R_PAREN)
            if depth > self.max_nesting:
                _refuse("nesting", f"parentheses nest deeper than {self.max_nesting}", text, token.start)
        # SELECT ... INTO writes a table, a file (MySQL's OUTFILE / DUMPFILE, which sqlglot cannot parse)
        # or a variable: refused here, before any parser
        writers = (TokenType.INSERT, TokenType.REPLACE, TokenType.MERGE)
        for index, token in enumerate(tokens):
            if token.token_type == TokenType.INTO and not any(t.token_type in writers for t in tokens[:index]):
                _refuse("write", "SELECT ... INTO writes a table, a file or a variable", text, token.start)
        semicolons = [t for t in tokens if t.token_type == TokenType.SEMICOLON]
        if semicolons and (len(semicolons) > 1 or semicolons[0] is not tokens[-1]):
            _refuse("single_statement", "more than one statement (a ';' is followed by more text)", text, semicolons[0].start)
        return tokens

    def check(self, statements: Iterable[exp.Expression | None], dialect: str = "sqlite", text: str = "",
              catalog_tables: Iterable[str] = ()) -> exp.Expression:
        """Checks on parsed statements; returns the single read-only statement.

        ``catalog_tables`` (a schema's table names) are names, not paths: a table the catalog holds is read
        from the catalog (DuckDB tries a replacement scan only for a name it does not hold), so the
        ``file_access`` rule leaves it alone, however it is spelt (``"Charter School (Y/N)"``)."""
        parsed = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
        if len(parsed) != 1:
            _refuse("single_statement", f"{len(parsed)} statements; exactly one SELECT is allowed", text)
        root = parsed[0]
        if not isinstance(root, _READ_ROOTS):
            _refuse("statement_type", f"{_describe(root)} is not a SELECT", text)
        rules = DIALECT_RULES[get_dialect(dialect).name]
        for node in root.walk():
            if isinstance(node, _WRITE_NODES):
                _refuse("write", f"{_describe(node)} inside the query", text, _offset(node))
            if isinstance(node, exp.PropertyEQ) and isinstance(node.this, (exp.Parameter, exp.SessionParameter)):
                _refuse("write", "a variable assignment (:=) inside the query", text, _offset(node))
            if isinstance(node, rules.variable_nodes):
                _refuse("variable", f"variable {node.sql(dialect=get_dialect(dialect).sqlglot_name)} reads server or session state",
                        text, _offset(node))
            if isinstance(node, exp.With) and node.args.get("recursive") and not self.allow_recursive:
                _refuse("recursive_cte", "WITH RECURSIVE is not allowed by this policy", text, _offset(node))
            if isinstance(node, exp.Func):
                for name in _function_names(node):
                    if rules.function_denied(name) or name.lower() in self.extra_denied_functions:
                        _refuse("function", f"function {name}() is denied in {dialect}", text, _offset(node))
        cte_names = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
        held = frozenset(catalog_tables)
        for table in root.find_all(exp.Table):
            self._check_table(table, rules, cte_names, dialect, text, held)
        return root

    def _check_table(self, table: exp.Table, rules: DialectRules, cte_names: set[str], dialect: str, text: str,
                     catalog_tables: frozenset[str] = frozenset()) -> None:
        if isinstance(table.this, exp.Func) or not table.name:
            return  # a table-valued function; its name was checked with the other functions
        name, schema = table.name, table.db
        if rules.table_is_system(name, schema):
            _refuse("system_table", f"system table {_qualified(table)} is not allowed", text, _offset(table))
        held = any(get_dialect(dialect).same_identifier(stored, name) for stored in catalog_tables)
        if rules.file_table_pattern is not None and rules.file_table_pattern.search(name) and not held:
            _refuse("file_access", f"table name {name!r} would be read as a file in {dialect}", text, _offset(table))
        if not schema and name.lower() in cte_names:
            return
        if self.tables is not None:
            info = get_dialect(dialect)
            quoted = isinstance(table.this, exp.Identifier) and table.this.quoted
            exact = quoted and not info.case_insensitive  # a quoted name keeps its case (postgres)
            if not any(allowed == name if exact else info.same_identifier(allowed, name) for allowed in self.tables):
                allowed_list = ", ".join(sorted(self.tables)) or "(none)"
                _refuse(
                    "table_allowlist", f"table {_qualified(table)} is not in the allowlist ({allowed_list})", text, _offset(table)
                )

    def apply_row_cap(self, root: exp.Expression) -> bool:
        """Add or lower the root ``LIMIT`` to ``max_rows`` in place; return whether it changed."""
        if self.max_rows is None:
            return False
        if isinstance(root, exp.Values) and not root.args.get("limit") and not root.args.get("order"):
            if len(root.expressions) <= self.max_rows:
                return False  # a VALUES list has exactly its rows
            root.set("expressions", root.expressions[: self.max_rows])  # SQLite reads no LIMIT after VALUES
            return True
        current = root.args.get("limit")
        if _limit_value(current) is not None and _limit_value(current) <= self.max_rows:  # type: ignore[operator]
            return False
        root.set("limit", exp.Limit(expression=exp.Literal.number(self.max_rows)))
        return True

    def enforce(self, text: str, dialect: str = "sqlite") -> tuple[exp.Expression, str | None]:
        """Every check on ``text`` alone (sqlglot-parsed, no grammar).

        Returns the checked expression and, when the row cap rewrote it, the rewritten SQL (else None).
        """
        tokens = self.check_text(text, dialect)
        name = get_dialect(dialect).sqlglot_name
        try:
            statements = sqlglot.Dialect.get_or_raise(name).parser().parse(tokens, text)
        except ParseError as exc:
            raise sqlglot_error(exc, text) from None
        except RecursionError:
            raise too_deep(text) from None
        root = self.check(statements, dialect, text)
        if not self.apply_row_cap(root):
            return root, None
        rewritten = root.sql(dialect=name, normalize_functions=False)
        self.check(reparse(rewritten, name), dialect, rewritten)
        return root, rewritten


def sqlglot_error(exc: ParseError, text: str) -> ValidationError:
    """A sqlglot parse error as a ``ValidationError`` with line and column."""
    first = exc.errors[0] if exc.errors else {}
    message = str(first.get("description") or exc).splitlines()[0]
    return ValidationError(
        f"sqlglot cannot parse the query: {message}",
        text=text,
        line=first.get("line"),
        column=first.get("col"),
        engine="sqlglot",
    )


def reparse(text: str, sqlglot_name: str) -> list[exp.Expression | None]:
    """Parse SQL that this package rendered itself; a failure is still a located ``ValidationError``."""
    try:
        return sqlglot.parse(text, read=sqlglot_name)
    except ParseError as exc:
        raise sqlglot_error(exc, text) from None


def too_deep(text: str) -> ValidationError:
    return ValidationError("the query nests too deeply for sqlglot to read", text=text, engine="sqlglot")


def _limit_value(node: exp.Expression | None) -> int | None:
    """The row count of a plain ``LIMIT n`` / ``FETCH FIRST n ROWS ONLY``; None when it is anything else."""
    if isinstance(node, exp.Limit):
        count = node.expression
    elif isinstance(node, exp.Fetch):
        options = node.args.get("limit_options")
        if options is not None and (options.args.get("percent") or options.args.get("with_ties")):
            return None
        count = node.args.get("count")
        if count is None:  # FETCH FIRST ROW ONLY
            return 1
    else:
        return None
    if isinstance(count, exp.Literal) and not count.is_string and count.this.isdigit():
        return int(count.this)
    return None


def _function_names(node: exp.Func) -> list[str]:
    if isinstance(node, exp.Anonymous):
        return [node.name]
    return [type(node).__name__.lower(), *node.sql_names()]


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return f"{str(node.this).upper()} statement"
    if isinstance(node, exp.Lock):
        return "FOR UPDATE/SHARE locking clause"
    return f"{type(node).__name__.upper()} clause" if isinstance(node, exp.Into) else f"{type(node).__name__.upper()} statement"


def _offset(node: exp.Expression) -> int | None:
    """Where ``node`` starts in the text, from the first located token sqlglot kept inside it."""
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    if isinstance(node, exp.Func) and "end" in node.meta and "start" in node.meta:
        return int(node.meta["start"])
    return min(starts) if starts else None


def _qualified(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


def _refuse(rule: str, reason: str, text: str, offset: int | None = None) -> None:
    line = column = None
    if offset is not None and text:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    raise PolicyError(f"read-only policy ({rule}): {reason}", rule=rule, text=text, line=line, column=column, engine="policy")
