"""Every SQL grammar stays within llguidance's default work limit at every step of a real query.

llguidance stops a mask step that builds more than 50,000 Earley items ("Too many items"); vLLM's guidance
backend and other engines run it with that default, so a grammar over the limit stops decoding there.
Over the embedded model's 151k-token vocabulary the dialect grammars once needed 45,000-83,000 items at
ordinary steps (``SELECT name ,``, ``... = (SELECT``) because bare names were bounded (``{0,63}``); this
walks Spider's dev queries and the engine-forms list token by token, computing each mask with the
default limits, in every dialect.
"""

from __future__ import annotations

import json
import random
import re
import pytest
from conftest import corpus

from constrain import load_grammar
from test_local_model import model_path  # noqa: F401  (the fixture: skips locally without the model, fails in CI)
from test_sql_engine_forms import DIALECTS, FORMS, query_of

pytestmark = pytest.mark.local_model

QUERIES_PER_DIALECT = 80


def _spider_queries() -> list[str]:
    queries = list(dict.fromkeys(re.sub(r"\s+", " ", item["query"].strip())
                                 for item in json.loads(corpus("spider", "dev_shared.json").read_text(encoding="utf-8"))))
    random.Random(7).shuffle(queries)
    return queries[:QUERIES_PER_DIALECT]


@pytest.fixture(scope="module")
def tokenizer(model_path: str):  # noqa: F811
    from constrain.local import load_model

    return load_model(model_path).tokenizer


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_mask_step_stays_within_llguidance_default_limits(dialect: str, tokenizer) -> None:
    import llguidance

    grammar = llguidance.LLMatcher.grammar_from_lark(load_grammar(f"sql/{dialect}").text)
    queries = _spider_queries() + [query_of(form, dialect) for form in FORMS]
    over: list[str] = []
    steps = 0
    for query in queries:
        tokens = tokenizer.tokenize_str(query)
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)  # llguidance's default limits
        for index, token in enumerate(tokens):
            matcher.compute_bitmask()
            steps += 1
            if matcher.is_error():
                over.append(f"{tokenizer.decode_str(tokens[:index])!r}: {matcher.get_error().splitlines()[0]}")
                break
            if not matcher.consume_token(token):
                break  # a form this dialect's grammar refuses (test_sql_engine_forms says which)
    assert steps > 20 * len(queries) // 2, "too few steps were masked for the check to mean anything"
    assert not over, f"{len(over)} of {len(queries)} queries hit llguidance's limit:\n" + "\n".join(over[:10])
