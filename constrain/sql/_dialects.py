"""SQL dialect differences as data: one small frozen record per dialect, no ``if`` chains elsewhere.

Each record says how the dialect treats identifiers (case folding, how to quote one), which
packaged grammar is its own, and which name sqlglot knows it by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # the grammars' bare identifiers (any length)

@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect spells and folds identifiers, and which grammar forms it adds."""

    name: str
    sqlglot_name: str
    # Whether an unquoted (and, for sqlite/duckdb, also a quoted) identifier matches regardless of ASCII case.
    case_insensitive: bool
    # Unquoted identifiers fold to this case before lookup ("lower" in postgres, "" when they keep it).
    unquoted_fold: str = ""
    # Whether column names (quoted or not) match in any ASCII case even where table names do not (MySQL).
    columns_case_insensitive: bool = False
    quote_open: str = '"'
    quote_close: str = '"'
    # Every (open, close) pair the dialect reads a quoted name in; a close quote inside is doubled,
    # except where open != close (SQLite's [x] holds no "]").
    name_quotes: tuple[tuple[str, str], ...] = (('"', '"'),)
    # Whether a string literal may name a select-list column (SELECT x AS 'total').
    string_aliases: bool = False
    # Keywords the dialect (and sqlglot) read as a bare table name after FROM / JOIN (measured).
    bare_table_keywords: tuple[str, ...] = ()
    # The shared grammar fragment the dialect file includes.
    base_grammar: str = "sql/_base"
    description: str = ""
    # Words sqlglot refuses as a bare identifier in this dialect (measured), on top of the grammar's keywords.
    reserved: frozenset[str] = frozenset()
    type_names: tuple[str, ...] = ()
    # The words the dialect's grammar itself uses as keywords (the shared fragment's, by default).
    grammar_keywords: frozenset[str] = frozenset()
    # Words a bare identifier reads as a value (NULL, TRUE, CURRENT_DATE ...): the grammar admits them
    # where a name stands (they are expressions there), but a catalog name spelt so must be quoted.
    value_words: frozenset[str] = frozenset()
    # Reserved words that name functions (MySQL's IF, LEFT, RANK ...): written with "(" they are calls.
    keyword_functions: tuple[str, ...] = ()
    # The quotes a string literal may take, and whether a backslash escapes the next character inside.
    string_quotes: tuple[str, ...] = ("'",)
    backslash_escapes: bool = False
    # Word terminals of the dialect's fragment a bare name could start with (MySQL's COLLATION, CHARSET):
    # lark's lexer tries them after the names, as it did when names were narrower (``// lexer-last:``).
    word_terminals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.grammar_keywords:
            object.__setattr__(self, "grammar_keywords", GRAMMAR_KEYWORDS)

    @property
    def keywords(self) -> frozenset[str]:
        """Words that are never bare identifiers in this dialect's grammar."""
        return self.grammar_keywords | self.reserved

    @property
    def grammar_name(self) -> str:
        return f"sql/{self.name}"

    def needs_quotes(self, name: str) -> bool:
        """Whether ``name`` must be quoted to be read back as itself (and so to appear in the grammar)."""
        if not _PLAIN_IDENTIFIER.match(name) or _ascii_lower(name) in self.keywords | self.value_words:
            return True
        return self.unquoted_fold == "lower" and name != name.lower()

    def quote(self, name: str) -> str:
        """``name`` as an identifier of this dialect: bare when that reads back the same, else quoted."""
        if not self.needs_quotes(name):
            return name
        escaped = name.replace(self.quote_close, self.quote_close * 2)
        return f"{self.quote_open}{escaped}{self.quote_close}"

    def same_identifier(self, stored: str, written: str) -> bool:
        """Whether ``written`` (as a user or query names it) refers to the catalog name ``stored``."""
        if stored == written:
            return True
        if self.case_insensitive:
            return _ascii_lower(stored) == _ascii_lower(written)
        if self.unquoted_fold == "lower":
            return stored == _ascii_lower(written)
        return False


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# Keywords the shared grammar uses where a bare identifier could also stand: never identifiers.
GRAMMAR_KEYWORDS: frozenset[str] = frozenset(
    """
    all and as asc between by case cast cross desc distinct else end except exists from glob group having
    in inner intersect is isnull join left like limit natural not notnull offset on or order outer select
    then union using when where with
    """.split()
)

# Words sqlglot 30 will not read as a bare identifier in every position (probed per dialect).
_SQLGLOT_RESERVED = frozenset(
    """
    alter and anti any as asof between case cast collate create cross cube current_catalog describe distinct
    drop else except fetch filter for from full glob grant having if ilike inner insert intersect into join
    lateral left like limit lock natural not notnull offset on or outer partitioned_by qualify recursive regexp
    replace returning revoke right rlike rollback rollup select semi session_user straight_join tablesample
    then uncache union using values when where window with xor
    """.split()
)

# Words DuckDB refuses as a bare table or column name (probed with DuckDB 2.0 over duckdb_keywords(): a
# table and a column created quoted, then named bare), beyond the ones above: bare in a prompt or grammar,
# `FROM show` (Spider's orchestra database) is a DuckDB parser error. Quoted, they are names as any other.
_DUCKDB_RESERVED = frozenset(
    """
    analyse analyze array asymmetric at authorization binary both check collation column concurrently
    constraint default deferrable do foreign freeze initially lambda leading overlaps pivot pivot_longer
    pivot_wider placing primary references show similar some symmetric table to trailing unique unpack
    unpivot variadic verbose
    """.split()
)

_COMMON_TYPES = ("integer", "int", "bigint", "smallint", "real", "float", "double", "numeric", "decimal",
                 "text", "varchar", "char", "date", "timestamp", "boolean")

# MySQL 8's reserved words (its manual's list, as sqlglot 30's MySQL generator holds it), less the shared
# grammar's keywords and the value words; plus what sqlglot 30's mysql reader refuses as a bare name
# (probed in select-list, FROM, alias, qualifier and WHERE positions): the charset introducers
# (_utf8mb4 'x'), charset, full, overlaps, sqlglot's own keywords of other dialects.
_MYSQL_RESERVED = frozenset(
    """
    accessible add alter analyze asensitive before bigint binary blob both call cascade change char character
    check collate column condition constraint continue convert create cube cume_dist cursor database databases
    day_hour day_microsecond day_minute day_second dec decimal declare default delayed delete dense_rank describe
    deterministic distinctrow div double drop dual each elseif empty enclosed escaped exit explain fetch
    first_value float float4 float8 for force foreign fulltext function generated get grant grouping groups
    high_priority hour_microsecond hour_minute hour_second if ignore index infile inout insensitive insert int
    int1 int2 int3 int4 int8 integer interval into io_after_gtids io_before_gtids iterate json_table key keys kill
    lag last_value lateral lead leading leave linear lines load lock long longblob longtext loop low_priority
    master_bind master_ssl_verify_server_cert match maxvalue mediumblob mediumint mediumtext middleint
    minute_microsecond minute_second mod modifies no_write_to_binlog nth_value ntile numeric of optimize
    optimizer_costs option optionally out outfile over partition percent_rank precision primary procedure purge
    range rank read read_write reads real recursive references regexp release rename repeat replace require
    resignal restrict return revoke right rlike row row_number rows schema schemas second_microsecond sensitive
    separator set show signal smallint spatial specific sql sql_big_result sql_calc_found_rows sql_small_result
    sqlexception sqlstate sqlwarning ssl starting stored straight_join system table terminated tinyblob tinyint
    tinytext to trailing trigger undo unique unlock unsigned update usage use values varbinary varchar
    varcharacter varying virtual while window write xor year_month zerofill

    _armscii8 _ascii _big5 _binary _cp1250 _cp1251 _cp1256 _cp1257 _cp850 _cp852 _cp866 _cp932 _dec8 _eucjpms
    _euckr _gb18030 _gb2312 _gbk _geostd8 _greek _hebrew _hp8 _keybcs2 _koi8r _koi8u _latin1 _latin2 _latin5
    _latin7 _macce _macroman _sjis _swe7 _tis620 _ucs2 _ujis _utf16 _utf16le _utf32 _utf8 _utf8mb3 _utf8mb4 anti
    any asof charset full ilike overlaps partitioned_by qualify returning rollback semi tablesample uncache
    """.split()
)
# Reserved words MySQL reads as a value when written bare: admitted where an expression stands.
_MYSQL_VALUE_WORDS = frozenset(
    "null true false current_date current_time current_timestamp current_user localtime localtimestamp "
    "utc_date utc_time utc_timestamp".split()
)

# Words every dialect reads as a value when written bare (a column so named is written quoted).
_VALUE_WORDS = frozenset("null true false current_date current_time current_timestamp".split())

DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(
        "sqlite", "sqlite", case_insensitive=True,
        name_quotes=(('"', '"'), ("`", "`"), ("[", "]")),
        string_aliases=True,
        # probed: SQLite 3.40 and sqlglot 30 both read these as table names in FROM, JOIN and comma joins
        bare_table_keywords=("anti", "any", "asc", "asof", "by", "cast", "cube", "current_catalog", "desc", "end",
                             "filter", "full", "if", "left", "lock", "natural", "offset", "recursive", "replace",
                             "right", "rollup", "semi", "session_user", "straight_join", "window"),
        description="SQLite read-only queries (SELECT / WITH ... SELECT)",
        reserved=_SQLGLOT_RESERVED,
        value_words=_VALUE_WORDS,
        type_names=_COMMON_TYPES + ("blob", "datetime"),
    ),
    "postgres": Dialect(
        "postgres", "postgres", case_insensitive=False, unquoted_fold="lower",
        base_grammar="sql/_postgres",
        description="PostgreSQL read-only queries (SELECT / WITH ... SELECT)",
        # (PostgreSQL's own reserved words the grammar uses as keywords: array, both, leading, similar ...)
        reserved=_SQLGLOT_RESERVED | {"array", "both", "leading", "match", "only", "similar", "some", "symmetric",
                                      "trailing", "variadic"},
        # (USER too reads as a value in PostgreSQL, but Spider's plain SQL names a table user)
        value_words=_VALUE_WORDS | {"localtime", "localtimestamp", "current_user", "current_role", "session_user",
                                    "current_catalog", "current_schema"},
        type_names=_COMMON_TYPES + ("bytea", "timestamptz", "interval", "time"),
    ),
    "duckdb": Dialect(
        "duckdb", "duckdb", case_insensitive=True,
        string_aliases=True,
        base_grammar="sql/_duckdb",
        description="DuckDB read-only queries (SELECT / WITH ... SELECT)",
        reserved=_SQLGLOT_RESERVED | _DUCKDB_RESERVED | {"force", "install", "map", "match", "only", "positional",
                                                         "summarize"},
        value_words=_VALUE_WORDS | {"localtime", "localtimestamp"},
        type_names=_COMMON_TYPES + ("blob", "varchar", "hugeint", "interval", "time"),
    ),
    # MySQL and MariaDB. Names: backticks only ("..." is a string under the default sql_mode, as
    # sqlglot's mysql reader reads it too); strings take '...' or "...", a backslash escaping. Case:
    # column names match in any case, but table (and schema) names are file names, case-sensitive on
    # Linux by default (lower_case_table_names=0); sqlglot's mysql dialect normalizes nothing either.
    # So same_identifier compares exactly: a table allowlist can never be passed by a differently-cased
    # table that is another table on the server (on a case-insensitive server an exact match is still
    # right). Columns MySQL matches in any case, and so does the validator (columns_case_insensitive: a
    # model's `LOCATION` for the catalog's `Location` runs there, so it must validate).
    "mysql": Dialect(
        "mysql", "mysql", case_insensitive=False, columns_case_insensitive=True,
        quote_open="`", quote_close="`", name_quotes=(("`", "`"),),
        string_aliases=True,
        # probed: words MySQL does not reserve that sqlglot 30's mysql reader reads as table names in FROM,
        # JOIN and comma joins; and DUAL (SELECT 1 FROM DUAL)
        bare_table_keywords=("anti", "any", "asof", "cast", "dual", "end", "extract", "full", "group_concat",
                             "offset", "overlaps", "semi"),
        base_grammar="sql/_mysql",
        word_terminals=("COLLATION", "CHARSET"),
        description="MySQL / MariaDB read-only queries (SELECT / WITH ... SELECT)",
        # ISNULL(x) is a MySQL function (the shared grammar's postfix ISNULL is not MySQL); EXTRACT( and
        # GROUP_CONCAT( open special forms: bare, those words would be a prefix of the form's token, which
        # llguidance reads greedily ("extract AS x" would be refused by llguidance and read by lark)
        grammar_keywords=GRAMMAR_KEYWORDS - {"isnull"} | {"extract", "group_concat"},
        reserved=_MYSQL_RESERVED,
        value_words=_MYSQL_VALUE_WORDS,
        # CAST / CONVERT targets; SIGNED / UNSIGNED [INTEGER] are the grammar fragment's own terminals
        type_names=("binary", "char", "date", "datetime", "decimal", "double", "float", "json", "time"),
        # reserved words MySQL calls as functions (the value words are identifiers to the grammar, and
        # take "(" as any function name does: a value word here would make "CURRENT_DATE - 1" a prefix
        # of this token, which llguidance reads greedily)
        keyword_functions=("char", "cume_dist", "database", "dense_rank", "first_value", "if", "lag",
                           "last_value", "lead", "left", "mod", "nth_value", "ntile", "percent_rank", "rank",
                           "repeat", "replace", "right", "row", "row_number", "schema"),
        string_quotes=("'", '"'),
        backslash_escapes=True,
    ),
}

_ALIASES = {"postgresql": "postgres", "sqlite3": "sqlite", "mariadb": "mysql"}


def get_dialect(name: str) -> Dialect:
    """The dialect record for ``name`` (``sqlite``, ``postgres``/``postgresql``, ``duckdb``, ``mysql``/``mariadb``)."""
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else ""
    dialect = DIALECTS.get(key)
    if dialect is None:
        raise InputError(f"unknown SQL dialect {name!r}; known dialects: {', '.join(sorted(DIALECTS))}")
    return dialect
