"""Model providers: each sends a grammar as a CFG constraint and returns the raw text it got back.

Providers never validate; the generate loop does (see ``constrain.generate``). What the loop shares with
``openai_tools`` / ``parse_openai`` lives down here, so both depend on it and not on each other: ``_guide``
(what a request asks of the model) and ``_result`` (``Attempt``, ``Result``, an output's typed value).
Pick one by name with
``get(name, **options)``, or let ``from_env()`` choose: an explicit name, else ``CONSTRAIN_PROVIDER``,
else ``openai`` when ``OPENAI_API_KEY`` is set, else ``openai`` against ``CONSTRAIN_BASE_URL`` when that
is set (any Responses-compatible server, e.g. ``constrain serve``), else the embedded ``local`` model.
An ``openai.OpenAI`` / ``AsyncOpenAI`` / ``AzureOpenAI`` client given in place of a name is used as is
(``from_openai_client``: the project's requests, sent through it).

May import: ``constrain.json_schema``, ``constrain.grammar``, ``constrain.errors``; ``local.py`` alone
re-exports ``constrain.local`` (the documented ``from constrain.providers.local import Local``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Mapping

from ..errors import InputError
from .base import Completion, Constraint, Message, Provider, Sampling, Usage
from ._http import HTTPProvider, RetryPolicy
from .chat import OpenAIChat
from .llamacpp import LlamaCppServer
from .openai import AzureOpenAI, OpenAI
from .openai_sdk import (
    OpenAIClient, OpenAISDK, OpenAISDKChat, from_openai_client, is_openai_client, openai_tools, parse_openai,
)
from .sglang import SGLang
from .vllm import VLLM

__all__ = [
    "AzureOpenAI",
    "Completion",
    "Constraint",
    "HTTPProvider",
    "LlamaCppServer",
    "Message",
    "OpenAI",
    "OpenAIChat",
    "OpenAIClient",
    "OpenAISDK",
    "OpenAISDKChat",
    "PROVIDERS",
    "Provider",
    "RetryPolicy",
    "SGLang",
    "Sampling",
    "Usage",
    "VLLM",
    "from_env",
    "from_openai_client",
    "get",
    "openai_tools",
    "parse_openai",
]

# provider name -> "module:Class"; loaded on first use so optional extras stay optional
PROVIDERS: dict[str, str] = {
    "openai": "constrain.providers.openai:OpenAI",
    "openai-chat": "constrain.providers.chat:OpenAIChat",
    "azure": "constrain.providers.openai:AzureOpenAI",
    "vllm": "constrain.providers.vllm:VLLM",
    "llamacpp": "constrain.providers.llamacpp:LlamaCppServer",
    "sglang": "constrain.providers.sglang:SGLang",
    "local": "constrain.providers.local:Local",
}


def get(name: str, **options: Any) -> Provider:
    """A provider by registry name, constructed with ``options`` (model, base_url, timeout, ...)."""
    target = PROVIDERS.get(name)
    if target is None:
        raise InputError(f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"provider {name!r} needs an optional dependency that is not installed: {exc.name}") from None
    cls = getattr(module, class_name)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise InputError(f"provider {name!r} takes no {', '.join(unknown)} option "
                             f"(it takes {', '.join(sorted(accepted)) or 'no options'})")
    return cls(**given)  # type: ignore[no-any-return]


def choose(name: str | None = None, environ: Mapping[str, str] | None = None, *, base_url: str | None = None) -> str:
    """The provider name ``from_env`` would use: explicit, then ``CONSTRAIN_PROVIDER``, then ``openai`` when a
    server URL is given (``base_url``, ``CONSTRAIN_BASE_URL``) or ``OPENAI_API_KEY`` is set, else ``local``."""
    env = os.environ if environ is None else environ
    if name:
        return name
    if env.get("CONSTRAIN_PROVIDER"):
        return env["CONSTRAIN_PROVIDER"]
    if base_url or env.get("OPENAI_API_KEY") or env.get("CONSTRAIN_BASE_URL"):
        return "openai"
    return "local"


def from_env(name: str | OpenAIClient | None = None, **options: Any) -> Provider:
    """The provider chosen by ``choose(name)``; ``CONSTRAIN_BASE_URL`` / ``CONSTRAIN_MODEL`` fill in defaults.

    ``name`` may be an openai client instead: the provider sends through it (``from_openai_client``)."""
    if is_openai_client(name):
        return from_openai_client(name, **options)
    if name is not None and not isinstance(name, str):
        raise InputError(f"provider= takes a Provider, a provider name or an openai.OpenAI / AsyncOpenAI client, "
                         f"not {type(name).__name__}")
    chosen = choose(name, base_url=options.get("base_url"))
    if chosen == "openai" and not options.get("base_url") and not os.environ.get("OPENAI_API_KEY"):
        options["base_url"] = os.environ.get("CONSTRAIN_BASE_URL")
    return get(chosen, **options)
