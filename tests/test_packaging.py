"""The grammars ship inside the wheel, and CI tests the installed wheel rather than the source tree."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import constrain
from constrain.grammar import _packaged as _resources

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("CONSTRAIN_EXPECT_WHEEL") != "1", reason="only in CI (.ci/run sets CONSTRAIN_EXPECT_WHEEL=1)")
def test_imported_from_the_installed_wheel() -> None:
    package_dir = Path(constrain.__file__).resolve().parent
    site_dirs = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    assert package_dir.parent in site_dirs, f"constrain imported from {package_dir}, not site-packages"
    assert package_dir != ROOT / "constrain"  # CI's venv lives inside the checkout: compare the package dir itself
    grammars = _resources.grammars_dir().resolve()
    assert grammars == package_dir / "grammars"
    assert (grammars / "json.lark").is_file()
    assert "json" in {info.name for info in constrain.available_grammars()}
    assert constrain.load_grammar("json").matches('{"installed": true}')


def test_wheel_contains_the_grammars_and_py_typed(tmp_path: Path) -> None:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no source tree next to the tests")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)]
    if importlib.util.find_spec("hatchling") is not None:
        command.insert(4, "--no-build-isolation")  # the backend is already here: no registry round trip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("constrain_cfg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"constrain/grammars/json.lark", "constrain/py.typed"} <= names
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "grammars").rglob("*.lark")}
    assert {"constrain/" + s for s in source} <= names  # every grammar, fragments included
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
