"""constrain: grammar-constrained structured output from language models.

Lark grammars go to the model as CFG constraints; every output is re-validated locally
(lark-python and llguidance, plus sqlglot / pydantic where they apply) before a typed value
is returned.
"""

from __future__ import annotations

from .errors import (
    AuthenticationError,
    BadRequestError,
    ConstrainError,
    DatabaseError,
    Diagnostic,
    GenerationError,
    GrammarError,
    GrammarRejectedError,
    InputError,
    JSONSchemaError,
    ModelError,
    NotFoundError,
    PolicyError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    SchemaError,
    ServerError,
    TruncatedError,
    ValidationError,
)
from .grammar import Grammar, available_grammars, load_grammar
from .generate import Attempt, Result, agenerate, generate
from .providers import (
    AzureOpenAI,
    LlamaCppServer,
    OpenAI,
    OpenAIChat,
    OpenAISDK,
    OpenAISDKChat,
    SGLang,
    VLLM,
    openai_tools,
    parse_openai,
)
from .batch import BatchError, BatchSummary, batch_status, cancel_batch, collect_batch, run_batch, submit_batch

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "BatchSummary",
    "batch_status",
    "cancel_batch",
    "collect_batch",
    "run_batch",
    "submit_batch",
    "Attempt",
    "AzureOpenAI",
    "LlamaCppServer",
    "OpenAI",
    "OpenAIChat",
    "OpenAISDK",
    "OpenAISDKChat",
    "Result",
    "SGLang",
    "VLLM",
    "agenerate",
    "generate",
    "AuthenticationError",
    "BadRequestError",
    "ConstrainError",
    "DatabaseError",
    "Diagnostic",
    "GenerationError",
    "Grammar",
    "GrammarError",
    "GrammarRejectedError",
    "InputError",
    "JSONSchemaError",
    "ModelError",
    "NotFoundError",
    "PolicyError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "SchemaError",
    "ServerError",
    "TruncatedError",
    "ValidationError",
    "available_grammars",
    "load_grammar",
    "openai_tools",
    "parse_openai",
]
