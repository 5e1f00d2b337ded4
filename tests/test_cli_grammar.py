"""``constrain grammars``, ``constrain check``, ``constrain validate``: output, exit codes, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import constrain
import constrain.grammar.lint
from constrain.cli import main
from constrain.grammar import DEFAULT_MAX_BYTES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# -- grammars -----------------------------------------------------------------------------------------------


def test_grammars_lists_every_packaged_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "grammars")
    assert code == 0
    for info in constrain.available_grammars():
        assert any(line.split()[0] == info.name and info.description in line for line in out.splitlines())
    code, out, _ = run(capsys, "grammars", "--json")
    assert [r["name"] for r in json_lines(out)] == [i.name for i in constrain.available_grammars()]


# -- check --------------------------------------------------------------------------------------------------


def test_check_packaged_grammar_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "json")
    assert code == 0 and "0 error(s)" in out
    code, out, _ = run(capsys, "check", "json", "--json")
    (record,) = json_lines(out)
    assert record["ok"] is True and record["grammar"] == "json"
    assert all(d["severity"] != "error" for d in record["diagnostics"])


@pytest.mark.parametrize("target", sorted(constrain.grammar.lint.TARGETS))
def test_check_with_target(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out, _ = run(capsys, "check", "json", "--target", target, "--json")
    (record,) = json_lines(out)
    assert code == 0 and record["ok"]
    assert any(d["engine"] == target for d in record["diagnostics"])


def test_check_unknown_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "json", "--target", "nowhere"])
    assert info.value.code == 2
    assert "nowhere" in capsys.readouterr().err


def test_check_malformed_grammar_exits_1_with_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.lark"
    text = '// bad one\nstart: a\na: "x" | b\nb: /(?=y)y/\n'
    path.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 1
    line = text.split("\n").index("b: /(?=y)y/") + 1
    column = "b: /(?=y)y/".index("(?=") + 1
    assert f"{path}:{line}:{column}: error:" in out
    code, out, _ = run(capsys, "check", str(path), "--json")
    (record,) = json_lines(out)
    assert record["ok"] is False
    assert {"line": line, "column": column, "code": "lookaround"}.items() <= next(
        d for d in record["diagnostics"] if d["code"] == "lookaround"
    ).items()


def test_check_grammar_that_does_not_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "syntax.lark"
    path.write_text('start: "a" )\n', encoding="utf-8")
    code, out, err = run(capsys, "check", str(path))
    assert code == 1 and "Traceback" not in out + err
    assert f"{path}:1:12: error:" in out


def test_check_missing_and_unreadable_grammars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "nope.lark"))
    assert code == 2 and "cannot read" in err and "nope.lark" in err
    code, _, err = run(capsys, "check", "no/such/grammar")
    assert code == 2 and "json" in err  # lists the packaged names
    bad = tmp_path / "latin1.lark"
    bad.write_bytes(b'start: "caf\xe9"\n')
    code, _, err = run(capsys, "check", str(bad))
    assert code == 2 and "invalid UTF-8" in err or "not valid UTF-8" in err


# -- validate -----------------------------------------------------------------------------------------------


def test_validate_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": [1, 2]}', encoding="utf-8")
    bad.write_text('{"a": [1, 2}', encoding="utf-8")
    code, out, _ = run(capsys, "validate", "--grammar", "json", str(good))
    assert code == 0 and "1/1 passed" in out
    code, out, _ = run(capsys, "validate", "-g", "json", str(good), str(bad), "--json")
    records = json_lines(out)
    assert code == 1
    assert records[0] == {"source": str(good), "ok": True, "error": None}
    error = records[1]["error"]
    assert records[1]["ok"] is False
    assert error["offset"] == len('{"a": [1, 2') and (error["line"], error["column"]) == (1, len('{"a": [1, 2') + 1)
    assert records[-1] == {"summary": True, "total": 2, "passed": 1, "failed": 1}


def test_validate_file_drops_only_the_final_line_terminator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grammar = constrain.load_grammar("dsl/cron")
    assert not grammar.matches("0 5 * * 1\n")  # the grammar itself admits no newline
    files = {}
    for name, content in {"lf": b"0 5 * * 1\n", "crlf": b"0 5 * * 1\r\n", "none": b"0 5 * * 1", "two": b"0 5 * * 1\n\n"}.items():
        files[name] = tmp_path / name
        files[name].write_bytes(content)
    assert main(["validate", "--grammar", "dsl/cron", "--json", *map(str, files.values())]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    verdict = {Path(r["source"]).name: r["ok"] for r in records if "source" in r}
    assert verdict == {"lf": True, "crlf": True, "none": True, "two": False}


def test_validate_lines_reports_each_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [b'{"ok": true}', b"[1,", b"", b'"caf\xc3\xa9"', b'"caf\xe9"', b"null\r"]
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, out, _ = run(capsys, "validate", "--grammar", "json", "--lines", str(path), "--json")
    records = json_lines(out)
    assert code == 1
    by_line = {r["line"]: r for r in records if "line" in r}
    assert sorted(by_line) == list(range(1, len(lines) + 1))
    assert [by_line[n]["ok"] for n in range(1, 7)] == [True, False, False, True, False, True]
    assert by_line[2]["error"]["offset"] == 3 and "end of input" in by_line[2]["error"]["message"]
    assert "empty" in by_line[3]["error"]["message"]
    assert by_line[5]["error"]["type"] == "InputError"
    assert by_line[5]["error"]["offset"] == lines[4].index(b"\xe9")
    assert records[-1] == {"summary": True, "total": 6, "passed": 3, "failed": 3}
    code, out, _ = run(capsys, "validate", "--grammar", "json", "--lines", str(path))
    bad_byte = lines[4].index(b"\xe9")
    assert f"{path}:5: invalid UTF-8 at byte {bad_byte}" in out
    assert "3/6 passed, 3 failed" in out


def test_validate_bad_inputs_never_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.json"
    huge.write_bytes(b"[" + b"1," * (DEFAULT_MAX_BYTES // 2 * 10) + b"1]")  # ~10 MB
    code, out, err = run(capsys, "validate", "-g", "json", str(empty), str(huge), str(tmp_path), "--json")
    assert code == 1 and "Traceback" not in err
    records = json_lines(out)
    assert "empty" in records[0]["error"]["message"]
    assert records[1]["error"]["type"] == "InputError" and "over the limit" in records[1]["error"]["message"]
    assert "cannot read" in records[2]["error"]["message"]


def test_validate_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 2 and "--grammar" in err
    code, _, err = run(capsys, "validate", "-g", "json")
    assert code == 2 and "nothing to validate" in err
    code, _, err = run(capsys, "validate", "-g", "json", "--lines", str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot read" in err


def test_validate_with_a_broken_grammar_is_one_fatal_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grammar = tmp_path / "broken.lark"
    grammar.write_text('start: a\na: "x" missing\n', encoding="utf-8")
    data = tmp_path / "in.txt"
    data.write_text("x\nx\n", encoding="utf-8")
    code, out, err = run(capsys, "validate", "-g", str(grammar), "--lines", str(data))
    assert code == 2
    assert "2:8" in err and "missing" in err
    assert "passed" not in out


def test_validate_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"[true]\n[nul]\n")))
    code, out, _ = run(capsys, "validate", "-g", "json", "--lines", "-", "--json")
    records = json_lines(out)
    assert code == 1 and [r["ok"] for r in records[:2]] == [True, False]


# -- the installed command ------------------------------------------------------------------------------------


def _command() -> list[str]:
    exe = shutil.which("constrain", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "constrain"]


def test_installed_command_in_a_subprocess(tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(b'{"a": 1}\n\xff\xfe\n' + b"[" * 3000 + b"\n")
    huge = tmp_path / "huge.json"
    huge.write_bytes(b'"' + b"a" * (10 * 1024 * 1024) + b'"')
    proc = subprocess.run(
        _command() + ["validate", "--grammar", "json", "--lines", str(data), str(huge), "--json"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert b"Traceback" not in proc.stderr
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert records[0]["ok"] is False and "over the limit" in records[0]["error"]["message"]  # files come first
    assert [r["ok"] for r in records[1:4]] == [True, False, False]
    assert records[-1]["summary"] is True
    proc = subprocess.run(_command() + ["check", "json"], capture_output=True, timeout=120)
    assert proc.returncode == 0 and b"json: 0 error(s)" in proc.stdout
