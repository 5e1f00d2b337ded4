"""The embedded model, for real: Qwen2.5-Coder-0.5B from the chunk packages, llama-cpp-python, llguidance.

Needs the ``[local]`` extra. Locally the tests skip (saying why) without it; under CI (``CI`` set)
a missing extra is a failure, so CI always runs them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from constrain import Grammar, ModelError, TruncatedError, load_grammar
from constrain.providers.base import Constraint, Message

pytestmark = pytest.mark.local_model


def _require_local_model() -> str:
    """The assembled default model's path; skip (locally) or fail (CI) when the extra is missing."""
    from constrain.local import _store as _model_store

    try:
        import llama_cpp  # noqa: F401

        return str(_model_store.resolve_model())
    except (ImportError, ModelError) as exc:
        reason = f"the [local] extra is not installed (pip install 'constrain-cfg[local]'): {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def model_path() -> str:
    return _require_local_model()


@pytest.fixture(scope="session")
def local(model_path: str):
    from constrain.providers.local import Local

    provider = Local(max_tokens=128)
    provider.load()
    return provider


SQL_SYSTEM = (
    "You write one SQLite query that answers the question. Reply with the SQL only.\n\n"
    "CREATE TABLE Artist (ArtistId INTEGER, Name TEXT);\n"
    "CREATE TABLE Album (AlbumId INTEGER, Title TEXT, ArtistId INTEGER);"
)


def _sql_messages(question: str) -> list[Message]:
    return [Message("system", SQL_SYSTEM), Message("user", question)]


def test_model_is_shared_per_file_and_so_is_its_tokenizer(local, model_path: str) -> None:
    from constrain.local import load_model

    model = local.load()
    assert load_model(model_path) is model
    assert model.tokenizer is model.tokenizer
    assert model.chat_template and "<|im_start|>" in model.chat_template
    assert model.n_vocab > 150_000


def test_constrained_outputs_are_in_the_grammar_for_both_engines(local) -> None:
    sql = load_grammar("sql/sqlite")
    out = local.complete(_sql_messages("How many artists are there?"), Constraint(sql))
    assert out.finish_reason == "stop"
    sql.validate(out.text)  # lark and llguidance both accept it
    assert "artist" in out.text.lower()
    assert out.usage.output_tokens > 0 and out.usage.input_tokens > 20

    json_grammar = load_grammar("json")
    out = local.complete(
        [Message("user", "Describe a cat as a JSON object with name, age and colour.")], Constraint(json_grammar)
    )
    value = json_grammar.parse_json(out.text)
    assert isinstance(value, (dict, list))


def test_the_greedy_shortcut_picks_the_same_tokens_as_full_masking(local) -> None:
    """Differential: accepting an allowed argmax without a mask must equal argmax over the masked logits."""
    import llguidance

    model = local.load()
    prompt = model.render([{"role": m.role, "content": m.content} for m in _sql_messages("List all album titles of AC/DC.")])
    grammar_text = llguidance.LLMatcher.grammar_from_lark(load_grammar("sql/sqlite").text)
    fast = model.generate(prompt, model.matcher(grammar_text), max_tokens=64)
    full = model.generate(prompt, model.matcher(grammar_text), max_tokens=64, mask_every_token=True)
    assert fast.text == full.text
    assert full.masks_computed >= full.completion_tokens  # really masked at every step
    assert fast.masks_computed < full.masks_computed


def test_token_limit_is_a_truncation_error_with_a_valid_prefix(local) -> None:
    grammar = Grammar('start: "Answer: " WORD (" " WORD)~20..30\n%import common.WORD')
    with pytest.raises(TruncatedError) as info:
        local.complete([Message("user", "Say something long.")], Constraint(grammar), max_tokens=6)
    err = info.value
    assert err.limit == 6
    assert err.partial.startswith("Answer: ")
    assert grammar._llg().prefix_ok(err.partial.encode()) == len(err.partial.encode())
    assert not grammar.matches(err.partial)


def test_eos_comes_only_when_the_grammar_is_complete(local) -> None:
    """The model would stop after one word; the grammar demands exactly five digits-words, so it must go on."""
    grammar = Grammar('start: NUM (", " NUM)~4\nNUM: /[1-9][0-9]?/')
    out = local.complete([Message("user", "Reply with the single number 7 and nothing else.")], Constraint(grammar))
    assert out.finish_reason == "stop"
    assert len(out.text.split(", ")) == 5
    grammar.validate(out.text)


def test_regex_constraints_work(local) -> None:
    constraint = Constraint.regex(r"(yes|no)") if hasattr(Constraint, "regex") else None
    if constraint is None:
        pytest.skip("Constraint.regex is not available")
    out = local.complete([Message("user", "Is Paris in France? Answer yes or no.")], constraint)
    assert out.text in ("yes", "no")


def test_greedy_is_deterministic_and_seeded_sampling_is_reproducible(model_path: str) -> None:
    from constrain.providers.local import Local

    grammar = Constraint(Grammar("start: /[0-9]{8}/"))
    messages = [Message("user", "Write a random eight-digit number.")]
    greedy = Local()
    assert greedy.complete(messages, grammar).text == greedy.complete(messages, grammar).text
    hot = [Local(temperature=1.5, seed=s) for s in (1, 2, 3, 4)]
    first = [p.complete(messages, grammar).text for p in hot]
    again = [p.complete(messages, grammar).text for p in hot]
    assert first == again  # a seed reproduces its sample
    assert len(set(first)) > 1  # different seeds explore
    assert all(len(t) == 8 and t.isdigit() for t in first)


def test_chat_template_override_and_refusal_without_one(local, model_path: str, tmp_path: Path) -> None:
    model = local.load()
    custom = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>"
    assert model.render([{"role": "user", "content": "hi"}], template=custom) == "<user>hi\n<assistant>"
    assert model.render([{"role": "user", "content": "hi"}]).startswith("<|im_start|>")

    # the same GGUF with its chat-template key renamed: llama.cpp no longer sees a template
    data = Path(model_path).read_bytes()
    key = b"tokenizer.chat_template"
    assert data.count(key) == 1
    stripped = tmp_path / "no-template.gguf"
    stripped.write_bytes(data.replace(key, b"tokenizer.chat_templatX"))
    del data
    from constrain.providers.local import Local

    bare = Local(str(stripped))
    with pytest.raises(ModelError, match="no chat template"):
        bare.complete([Message("user", "hi")], Constraint(Grammar('start: "x"')))
    ok = Local(str(stripped), chat_template=custom).complete([Message("user", "Say x.")], Constraint(Grammar('start: "x"')))
    assert ok.text == "x"
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_timeout_bounds_a_request(model_path: str) -> None:
    from constrain.errors import ProviderTimeoutError
    from constrain.providers.local import Local

    with pytest.raises(ProviderTimeoutError, match="no complete answer within 0.0 s"):
        Local(timeout=0.0).complete([Message("user", "Count to ten.")], Constraint(Grammar("start: /[0-9 ]{1,40}/")))


def test_a_grammar_llguidance_loops_on_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    """No model needed: the probe runs first, so decoding never starts under a grammar it cannot finish."""
    from constrain import GrammarError
    from constrain.providers.local import Local

    provider = Local(cache_dir=tmp_path)  # an empty cache: loading would have to assemble the model
    hangs = Grammar('start: A B\nA: /a+/\nB: "a"\n', name="swallowing")
    with pytest.raises(GrammarError, match="'swallowing'.*would never return"):
        provider.complete([Message("user", "go")], Constraint(hangs))
    assert provider._loaded is None
