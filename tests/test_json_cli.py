"""Config generation and validation from the command line: ``generate --schema`` / ``--model-class``,
``validate --schema --lines`` with per-line verdicts and JSON pointers."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain.cli import main

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
        "image": {"type": "string", "format": "uri"},
        "ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
    },
    "required": ["name", "replicas"],
    "additionalProperties": False,
}


class Service(pydantic.BaseModel):
    name: str
    replicas: int = pydantic.Field(ge=1)


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path


def test_generate_with_a_schema_prints_the_validated_config(served, schema_file: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    server, url = served
    # a model that ignores the grammar: wrong value, then a valid config in another key order with spaces
    server.inject(output('{"name": "api", "replicas": 0}'), output('{"replicas": 2, "name": "api"}'))
    assert main(["generate", "--schema", str(schema_file), "make a config", "-p", "openai", "--base-url", url]) == 0
    captured = capsys.readouterr()
    assert captured.out == '{"replicas": 2, "name": "api"}\n'
    assert "/replicas" in captured.err  # the refused attempt names the failing value
    server.inject(output('{"name":"api","replicas":3,"image":"https://example.com/app"}'))
    assert main(["generate", "--schema", str(schema_file), "x", "-p", "openai", "--base-url", url, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["ok"] and record["value"] == {"name": "api", "replicas": 3, "image": "https://example.com/app"}


def test_generate_with_a_model_class(served, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    server, url = served
    server.inject(output('{"name":"db","replicas":1}'))
    assert main(["generate", "--model-class", f"{__name__}:Service", "x", "-p", "openai", "--base-url", url, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["value"] == {"name": "db", "replicas": 1}


def test_validate_lines_any_spelling_and_pointers(tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        json.dumps({"name": "api", "replicas": 2, "ports": [80, 443]}),  # json.dumps spacing (was refused at 1:9)
        json.dumps({"ports": [80], "replicas": 2, "name": "api"}),  # another key order
        json.dumps({"name": "api", "replicas": 2, "ports": [80, 0]}),  # out of range
        json.dumps({"name": "api", "replicas": 2, "image": "://"}),  # not a URI
        '{"name": "api", "replicas": 2',  # not JSON
    ]
    path = tmp_path / "configs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["validate", "--schema", str(schema_file), "--lines", str(path), "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    verdicts = [r for r in records if "line" in r]
    assert [r["ok"] for r in verdicts] == [True, True, False, False, False]
    assert verdicts[2]["error"]["pointer"] == "/ports/1" and verdicts[2]["error"]["column"] == 46
    assert verdicts[3]["error"]["pointer"] == "/image"
    assert verdicts[4]["error"]["engine"] in ("llguidance", "lark")
    assert records[-1] == {"summary": True, "total": 5, "passed": 2, "failed": 3}
    assert main(["validate", "--schema", str(schema_file), "--lines", str(path)]) == 1
    human = capsys.readouterr().out
    assert "schema violation at /ports/1" in human and "2/5 passed" in human


def test_the_installed_script_finds_a_model_class_in_the_current_folder(tmp_path: Path) -> None:
    """``constrain json-grammar myapp.models:Owner`` from the folder holding ``myapp/``, through the installed
    console script (whose ``sys.path`` has no current folder of its own, unlike ``python -m``)."""
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).with_name("constrain")
    if not script.exists():
        script = Path(shutil.which("constrain") or "constrain")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "models.py").write_text(
        "from pydantic import BaseModel\n\nclass Owner(BaseModel):\n    name: str\n    pets: int\n")
    done = subprocess.run([str(script), "json-grammar", "myapp.models:Owner"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert '"\\"pets\\""' in done.stdout
