"""The public surface does not shrink: every name users import today stays importable from where they import
it (the package's ``__all__``, the module paths the docs show, ``python -m`` entry points, CLI commands).

A name added to a package is fine; a name that disappears, or moves without staying reachable from its old
place, fails here. Private modules (``_name``) may move freely: nothing below names one.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

PUBLIC: dict[str, set[str]] = {
    "constrain": {
        "Attempt", "AuthenticationError", "AzureOpenAI", "BadRequestError", "BatchError", "BatchSummary",
        "ConstrainError", "DatabaseError", "Diagnostic", "GenerationError", "Grammar", "GrammarError",
        "GrammarRejectedError", "InputError", "JSONSchemaError", "LlamaCppServer", "ModelError", "NotFoundError",
        "OpenAI", "OpenAIChat", "OpenAISDK", "OpenAISDKChat", "PolicyError", "ProviderConnectionError",
        "ProviderError", "ProviderTimeoutError", "RateLimitError", "ResponseFormatError", "Result", "SGLang",
        "SchemaError", "ServerError", "TruncatedError", "VLLM", "ValidationError", "agenerate",
        "available_grammars", "batch_status", "cancel_batch", "collect_batch", "generate", "load_grammar",
        "openai_tools", "parse_openai", "run_batch", "submit_batch",
    },
    "constrain.sql": {
        "Answer", "Candidate", "Column", "Database", "ForeignKey", "Policy", "Rows", "SQLQuery", "Schema", "Table",
        "Vote", "aask", "ask", "connect", "grammar", "validate",
    },
    "constrain.json_schema": {
        "Limits", "SchemaGrammar", "SchemaViolation", "describe", "grammar", "load_schema", "schema_of",
        "token_bound", "widenings",
    },
    "constrain.dsl": {
        "And", "Chart", "Comparison", "Cron", "CronField", "Encoding", "Expr", "Field", "In", "Not", "Or", "chart",
        "cron", "field_list", "fields_of_table", "fields_spec", "filter", "load_fields",
    },
    "constrain.dsl.filter": {"And", "Comparison", "Expr", "GRAMMAR", "In", "Not", "Op", "Or", "Value", "from_tree", "grammar"},
    "constrain.dsl.chart": {"Aggregate", "Chart", "Encoding", "FieldType", "GRAMMAR", "Mark", "from_tree", "grammar"},
    "constrain.dsl.cron": {"Cron", "CronField", "CronItem", "Every", "FIELDS", "GRAMMAR", "Span", "from_tree", "never_fires"},
    "constrain.dsl.schedule": {"GRAMMAR", "from_tree", "parse"},
    "constrain.providers": {
        "AzureOpenAI", "Completion", "Constraint", "HTTPProvider", "LlamaCppServer", "Message", "OpenAI",
        "OpenAIChat", "OpenAIClient", "OpenAISDK", "OpenAISDKChat", "PROVIDERS", "Provider", "RetryPolicy",
        "SGLang", "Sampling", "Usage", "VLLM", "from_env", "from_openai_client", "get", "openai_tools",
        "parse_openai",
    },
    "constrain.batch": {
        "BatchError", "BatchSummary", "Counts", "FAILURES", "Pipeline", "RESULTS", "STATE", "batch_status",
        "cancel_batch", "collect_batch", "pipeline", "run_batch", "submit_batch",
    },
    "constrain.playground": {"CALL_SECONDS", "CHECK_SECONDS", "LIMITS", "MAX_BODY_BYTES", "Playground"},
    "constrain.errors": {
        "AuthenticationError", "BadRequestError", "ConstrainError", "DatabaseError", "Diagnostic", "GenerationError",
        "GrammarError", "GrammarRejectedError", "InputError", "JSONSchemaError", "ModelError", "NotFoundError",
        "PolicyError", "ProviderConnectionError", "ProviderError", "ProviderTimeoutError", "RateLimitError",
        "ResponseFormatError", "SchemaError", "ServerError", "TruncatedError", "ValidationError",
    },
    "constrain.generate": {"Attempt", "DEFAULT_SYSTEM", "Result", "agenerate", "constraint_for", "generate", "guide", "messages_for"},
    "constrain.server": {"Backend", "GenerationRequest", "RandomWalkBackend", "Request", "Responder", "Server", "ServerThread", "main"},
}

# names the docs import from a module path of their own (not through a package's __all__)
DOCUMENTED_PATHS = {
    "constrain.providers.local": {"Local"},
    "constrain.sql.grammar": {"render_dialect_file"},
    "constrain.grammar": {"Grammar", "load_grammar", "available_grammars"},
}

CLI_COMMANDS = {
    "grammars", "check", "validate", "serve", "sample", "explain", "sql-grammar", "generate", "sql", "json-grammar",
    "batch", "playground",
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_is_still_exported(module: str) -> None:
    mod = importlib.import_module(module)
    exported = set(getattr(mod, "__all__", ()))
    assert PUBLIC[module] <= exported, f"{module}.__all__ lost {sorted(PUBLIC[module] - exported)}"
    missing = {name for name in PUBLIC[module] if not hasattr(mod, name)}
    assert not missing, f"{module} lists but does not define {sorted(missing)}"


@pytest.mark.parametrize("module", sorted(DOCUMENTED_PATHS))
def test_documented_import_paths_still_work(module: str) -> None:
    mod = importlib.import_module(module)
    missing = {name for name in DOCUMENTED_PATHS[module] if not hasattr(mod, name)}
    assert not missing, f"`from {module} import ...` no longer finds {sorted(missing)}"


def test_the_top_level_names_are_the_errors_and_providers_they_were() -> None:
    import constrain
    from constrain import errors, providers

    for name in PUBLIC["constrain.errors"]:
        assert getattr(constrain, name) is getattr(errors, name)
        assert issubclass(getattr(errors, name), errors.ConstrainError) or name == "Diagnostic"
    for name in ("OpenAI", "OpenAIChat", "VLLM", "SGLang", "LlamaCppServer", "AzureOpenAI"):
        assert getattr(constrain, name) is getattr(providers, name)


def test_every_cli_command_is_still_there() -> None:
    from constrain.cli import build_parser

    parser = build_parser()
    commands: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands |= set(action.choices)
    assert CLI_COMMANDS <= commands, f"the CLI lost {sorted(CLI_COMMANDS - commands)}"


def test_the_server_still_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "constrain.server", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--port" in done.stdout
