"""`constrain sample` and `constrain explain`, through `constrain.cli.main` and one real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import constrain
import constrain.grammar.lint
from constrain.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.split("\n") if line.strip()]  # not splitlines: \u2028 is text


# -- sample ------------------------------------------------------------------------------------------


def test_sample_is_deterministic_for_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "sample", "dsl/cron", "-n", "6", "--seed", "42", "--json")
    again = run(capsys, "sample", "dsl/cron", "-n", "6", "--seed", "42", "--json")
    other = run(capsys, "sample", "dsl/cron", "-n", "6", "--seed", "43", "--json")
    assert first == again and first[0] == 0
    texts = [r["text"] for r in json_lines(first[1]) if "text" in r]
    assert len(texts) == 6 and texts != [r["text"] for r in json_lines(other[1]) if "text" in r]
    assert texts == constrain.load_grammar("dsl/cron").sample(6, seed=42)  # the library call, same walk
    summary = json_lines(first[1])[-1]
    assert summary == {"summary": True, "grammar": "dsl/cron", "seed": 42, "requested": 6, "drawn": 6,
                       "accepted": 6, "typed_refused": 0, "lark_refused": 0}
    grammar = constrain.load_grammar("dsl/cron")
    for text in texts:
        assert grammar.matches(text)
        grammar.parse(text)


def test_sample_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sample", "dsl/filter", "-n", "3", "--seed", "7")
    assert code == 0
    assert out.splitlines() == constrain.load_grammar("dsl/filter").sample(3, seed=7)
    assert "--seed 7" in err
    # multi-line languages get one header per sample
    code, out, _ = run(capsys, "sample", "dsl/chart", "-n", "2", "--seed", "1")
    assert code == 0 and out.count("--- sample ") == 2 and "mark: " in out


def test_sample_without_seed_reports_the_seed_to_reproduce(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sample", "json", "-n", "2", "--json")
    records = json_lines(out)
    seed = records[-1]["seed"]
    again = run(capsys, "sample", "json", "-n", "2", "--json", "--seed", str(seed))[1]
    assert [r.get("text") for r in json_lines(again)[:-1]] == [r.get("text") for r in records[:-1]]


def test_sample_flags_engine_disagreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Lark's lexer turns a NAME spelled "x" into the keyword "x" (then wants a NAME after it);
    # llguidance reads "x" as a NAME: a walk that stops after "x" is accepted by one engine only.
    path = tmp_path / "trap.lark"
    path.write_text('// keyword that is also a name\n// parser: lalr\nstart: NAME | "x" NAME\nNAME: /[xy]/\n')
    code, out, err = run(capsys, "sample", str(path), "-n", "40", "--seed", "1", "--json")
    records = json_lines(out)
    refused = [r for r in records if r.get("lark_ok") is False]
    assert code == 1 and refused and records[-1]["lark_refused"] == len(refused)
    assert all(r["text"] == "x" for r in refused)
    assert "engines disagree" in err


GRAMMARS = [info.name for info in constrain.available_grammars()]
# what a DSL's conversion refuses that its grammar cannot state at a reasonable size: dsl/schedule's clock
# lists whose minutes differ between hours (cron writes minutes x hours), windows cron cannot follow
# exactly, and dates that never occur (tests/test_dsl_schedule.py measures how rare they are)
SEMANTIC_ONLY = {"dsl/schedule": ("cron fires at every listed minute", "cron repeats the same minutes", "never fires",
                                  "has no day")}
SEEDS = (1, 2, 3)


@pytest.mark.parametrize("name", GRAMMARS)
def test_what_sample_accepts_validate_accepts(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sample G -n 50 --seed S`, then `validate --grammar G` on each sample: the same verdict, string by
    string, for several seeds; and the DSLs' grammars are as tight as their checks (nothing refused)."""
    for seed in SEEDS:
        code, out, _ = run(capsys, "sample", name, "-n", "50", "--seed", str(seed), "--all", "--json")
        records = json_lines(out)
        summary, samples = records[-1], records[:-1]
        assert code == 0 and summary["lark_refused"] == 0 and len(samples) == summary["drawn"] >= 25
        paths = []
        for record in samples:
            path = tmp_path / f"{seed}-{record['index']}.txt"
            path.write_text(record["text"] + "\n", encoding="utf-8", newline="")  # validate drops one final newline
            paths.append(str(path))
        code, out, _ = run(capsys, "validate", "--grammar", name, *paths, "--json")
        verdicts = json_lines(out)[:-1]
        assert [v["ok"] for v in verdicts] == [r["ok"] for r in samples]
        if name.startswith("dsl/"):
            refused = [r for r in samples if not r["ok"]]
            assert all(any(why in str(r) for why in SEMANTIC_ONLY.get(name, ())) for r in refused), refused[:2]
        # what sample prints by default is exactly the accepted strings
        code, out, _ = run(capsys, "sample", name, "-n", "50", "--seed", str(seed), "--json")
        assert [r["text"] for r in json_lines(out)[:-1]] == [r["text"] for r in samples]


def test_sample_hides_refused_strings_unless_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "digits.lark"
    path.write_text("// one digit\nstart: D\nD: /[0-9]/\n")
    grammar = constrain.load_grammar(path)
    # a typed check the grammar leaves out: odd digits are refused
    from constrain.cli import _authoring_cmds

    def judge(g: constrain.Grammar, text: str) -> constrain.grammar.lint.SampleVerdict:
        if int(text) % 2:
            return constrain.grammar.lint.SampleVerdict(text, typed_error=constrain.ValidationError("odd", text=text, engine="semantic"))
        return constrain.grammar.lint.SampleVerdict(text)

    original = _authoring_cmds.judge_sample
    _authoring_cmds.judge_sample = judge  # type: ignore[assignment]
    try:
        drawn = grammar.sample(20, seed=4)
        code, out, err = run(capsys, "sample", str(path), "-n", "20", "--seed", "4")
        assert code == 0 and out.split() == [t for t in drawn if int(t) % 2 == 0]
        assert "refused by the typed checks (--all shows them)" in err
        code, out, err = run(capsys, "sample", str(path), "-n", "20", "--seed", "4", "--all")
        assert out.split("\n")[:-1] == [t if int(t) % 2 == 0 else f"[refused] {t}" for t in drawn]
        assert "(refused: odd [semantic])" in err
    finally:
        _authoring_cmds.judge_sample = original  # type: ignore[assignment]


@pytest.mark.parametrize(("argv", "message"), [
    (["sample", "dsl/cron", "-n", "0"], "-n must be at least 1"),
    (["sample", "no/such/grammar"], "no packaged grammar"),
    (["sample", "dsl/cron", "--max-bytes", "0"], "--max-bytes"),
])
def test_sample_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


# -- explain -----------------------------------------------------------------------------------------


def test_explain_accepting_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "dsl/cron", "*/5 9-17 * * MON-FRI")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()] == ["accepts", "accepts", "accepts"]


def test_explain_both_engines_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    text = "a = 1 AND (b IN (1, 2)"
    code, out, _ = run(capsys, "explain", "--json", "dsl/filter", text)
    report = json_lines(out)[0]
    assert code == 1 and report["ok"] is False and report["agree"] is True
    lark, llg = report["engines"]
    assert lark["engine"] == "lark/earley" and llg["engine"] == "llguidance"
    for engine in (lark, llg):  # both stop at the end of the text
        assert engine["error"]["offset"] == len(text.encode()) and engine["error"]["column"] == len(text) + 1
    assert '")"' in lark["expected"] and "')'" in llg["expected"]

    code, human, _ = run(capsys, "explain", "dsl/filter", text)
    lines = human.splitlines()
    assert code == 1 and lines[0].startswith("lark/earley") and "refuses at 1:23 (byte 22)" in lines[0]
    source = next(i for i, line in enumerate(lines) if line.endswith(text))
    caret = lines[source + 1]
    assert caret.index("^") - caret.index("|") == source_col(lines[source], text) + len(text)
    assert caret.rstrip().endswith("lark/earley, llguidance")


def source_col(line: str, text: str) -> int:
    return line.index(text) - line.index("|")


def test_explain_positions_differ_per_engine(capsys: pytest.CaptureFixture[str]) -> None:
    text = "0 0 * 5,JAN-FEX *"
    code, out, _ = run(capsys, "explain", "--json", "dsl/cron", text)
    lark, llg = json_lines(out)[0]["engines"]
    assert code == 1
    assert llg["error"]["offset"] == text.index("X")  # llguidance refuses the first impossible byte
    assert lark["error"]["offset"] == text.index("-FEX")  # Lark's lexer took `JAN` whole, then wants `,`
    assert '","' in lark["expected"] and {"'B'", "'b'"} <= set(llg["expected"])


def test_explain_typed_check(capsys: pytest.CaptureFixture[str]) -> None:
    # json's grammar stops numbers at 1e309; the band above the largest double (1.8e308) is the typed check's
    text = "[1, 1.8e308]"
    code, out, _ = run(capsys, "explain", "--json", "json", text)
    report = json_lines(out)[0]
    assert code == 1 and report["agree"] is True
    typed = report["engines"][2]
    assert typed["engine"] == "typed" and typed["error"]["offset"] == text.index("1.8e308")
    assert typed["error"]["engine"] == "json"


def test_explain_engines_disagree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # with %ignore, Lark skips leading whitespace; llguidance refuses it (DESIGN.md §2)
    path = tmp_path / "ignore.lark"
    path.write_text('// words\nstart: WORD+\nWORD: /[a-z]{1,8}/\n%ignore " "\n')
    code, out, _ = run(capsys, "explain", str(path), " abc")
    assert code == 1
    assert "lark/lalr   accepts" in out and "llguidance  refuses at 1:1 (byte 0)" in out
    assert "the engines disagree: only lark/lalr accepts" in out
    code, out, _ = run(capsys, "explain", "--json", str(path), " abc")
    assert json_lines(out)[0]["agree"] is False


def test_explain_file_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "chart.txt"
    good.write_text("mark: bar\nx: a nominal\ny: sum(b) nominal\n", encoding="utf-8")
    code, out, _ = run(capsys, "explain", "dsl/chart", "--file", str(good))
    assert code == 1 and "expected: QUANTITATIVE" in out and "   3 | y: sum(b) nominal" in out

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"mark: \xff")
    code, _, err = run(capsys, "explain", "dsl/chart", "--file", str(bad))
    assert code == 2 and "invalid UTF-8 at byte 6" in err
    code, _, err = run(capsys, "explain", "dsl/chart")
    assert code == 2 and "either as an argument or with --file" in err
    code, _, err = run(capsys, "explain", "dsl/chart", "x", "--file", str(good))
    assert code == 2 and "not both" in err
    code, _, err = run(capsys, "explain", "dsl/chart", "--file", str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot read" in err


def test_explain_long_line_is_windowed(capsys: pytest.CaptureFixture[str]) -> None:
    text = " AND ".join(f"f{i} = {i}" for i in range(60)) + " AND"
    code, out, _ = run(capsys, "explain", "dsl/filter", text)
    assert code == 1
    shown = [line for line in out.splitlines() if line.startswith("   1 | ")]
    assert shown and len(shown[0]) < 120 and shown[0].startswith("   1 | ...")


def test_installed_command(tmp_path: Path) -> None:
    exe = shutil.which("constrain") or shutil.which("constrain", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the constrain command is not installed")
    done = subprocess.run([exe, "explain", "--json", "dsl/cron", "61 * * * *"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and json.loads(done.stdout)["engines"][1]["error"]["offset"] == 1
    done = subprocess.run([exe, "sample", "dsl/cron", "-n", "2", "--seed", "3"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines() == constrain.load_grammar("dsl/cron").sample(2, seed=3)


# -- check: typed refusals ---------------------------------------------------------------------------


def test_check_reports_the_share_of_walks_the_typed_checks_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    # dsl/schedule's times must form a cartesian product of hours and minutes, which no grammar states
    code, out, _ = run(capsys, "check", "dsl/schedule", "--json")
    (record,) = json_lines(out)
    (finding,) = [d for d in record["diagnostics"] if d["code"] == "typed-refusals"]
    assert code == 0 and finding["severity"] == "warning" and finding["engine"] == "typed"
    assert "random walks" in finding["message"] and "cron fires at every listed minute" in finding["message"]
    code, out, _ = run(capsys, "check", "json", "--json")  # its numbers stop at 1e309 (tests/test_json_number.py)
    (record,) = json_lines(out)
    assert code == 0 and [d for d in record["diagnostics"] if d["code"] == "typed-refusals"] == []
    for name in ("dsl/cron", "dsl/filter", "dsl/chart"):  # as tight as their checks
        assert [d for d in constrain.load_grammar(name).check() if d.code == "typed-refusals"] == []


def test_check_counts_refusals_of_an_attached_transformer() -> None:
    import lark

    class Even(lark.Transformer):
        def start(self, children: list[lark.Token]) -> int:
            value = int(children[0])
            if value % 2:
                raise ValueError(f"{value} is odd")
            return value

    grammar = constrain.Grammar("// one digit\nstart: D\nD: /[0-9]/\n").with_transformer(Even())
    (finding,) = [d for d in grammar.check() if d.code == "typed-refusals"]
    share = int(finding.message.split(" of ")[0])
    assert 30 <= share <= 70 and "is odd [semantic]" in finding.message
    assert [d for d in constrain.Grammar("// one digit\nstart: D\nD: /[0-9]/\n").check() if d.code == "typed-refusals"] == []
