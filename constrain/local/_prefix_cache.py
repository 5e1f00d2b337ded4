"""The embedded model's prompt-prefix cache: llama.cpp KV state of a prompt's shared prefix.

A prompt is laid out as what repeats across requests (instructions, a schema, worked examples) then
what changes (the last user message). After evaluating the prefix, ``LocalModel`` keeps the KV state
of sequence 0 (``llama_state_seq_get_data``) here, keyed by the exact prefix tokens: in memory (LRU,
bounded in bytes) and on disk under ``cache_dir()/prefix`` (LRU by mtime, bounded in bytes), so a new
process reads a schema it has seen before in milliseconds instead of seconds.

A file is written atomically (temporary file, then ``os.replace``) and carries a header that is checked
before its state is used: the model file's sha256, the llama.cpp build and context settings, the exact
prefix tokens and a digest of the state. A file that fails any check (truncated, corrupt, another
model's) is a miss; the fresh state then replaces it.

The model's vocabulary (every token's bytes, which llguidance's tokenizer is built from: 0.3 s to read
through llama.cpp, 0.03 s from a file) is kept in the same folder, checked the same way.

Settings: ``CONSTRAIN_CACHE_DIR=off`` turns the disk cache off; ``CONSTRAIN_PREFIX_CACHE_MEMORY`` and
``CONSTRAIN_PREFIX_CACHE_DISK`` bound each in bytes (``256M``, ``1G``; ``0`` turns it off).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import InputError
from . import _store

DEFAULT_MEMORY_BYTES = 256 << 20
DEFAULT_DISK_BYTES = 1 << 30
# A prefix shorter than this is re-read in about a second on a slow CPU: not worth a file on disk or a
# slot in the LRU (short system prompts differ per grammar and would only churn the cache)
DEFAULT_MIN_TOKENS = 128

_MAGIC = b"constrain-kv-prefix\x00v1\n"
_VOCABULARY_MAGIC = b"constrain-vocabulary\x00v1\n"
_HEAD = struct.Struct("<I")  # length of the JSON header that follows the magic
_SUFFIX = ".kv"
_IDENTITY_MEMO = "models.json"
_DIGEST = "blake2b"


def _parse_bytes(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    scale = units.get(text[-1].upper(), 1)
    number = text[:-1] if text[-1].upper() in units else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise InputError(f"{name}={text!r}: expected a size in bytes such as 256M, 1G or 0") from None
    if value < 0:
        raise InputError(f"{name}={text!r}: a size cannot be negative")
    return value


def default_directory() -> Path | None:
    """``cache_dir()/prefix``; None when ``CONSTRAIN_CACHE_DIR=off``."""
    if os.environ.get("CONSTRAIN_CACHE_DIR") == "off":
        return None
    return _store.cache_dir() / "prefix"


def model_digest(path: Path, memo_dir: Path | None) -> str:
    """The sha256 of the model file, hashed once per (size, mtime, inode): the model store's own
    verification stamp when it is current, else a memo kept in ``memo_dir``."""
    st = path.stat()
    fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    try:
        stamp = json.loads(path.with_name(path.name + ".verified").read_text(encoding="utf-8"))
        if {k: stamp.get(k) for k in fingerprint} == fingerprint and isinstance(stamp.get("sha256"), str):
            return str(stamp["sha256"])
    except (OSError, ValueError, AttributeError):
        pass
    key = os.path.realpath(path)
    memo: dict[str, Any] = {}
    memo_path = memo_dir / _IDENTITY_MEMO if memo_dir is not None else None
    if memo_path is not None:
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
            known = memo.get(key, {})
            if {k: known.get(k) for k in fingerprint} == fingerprint and isinstance(known.get("sha256"), str):
                return str(known["sha256"])
        except (OSError, ValueError, AttributeError):
            memo = {}
    digest = _store.file_sha256(path)
    if memo_path is not None and isinstance(memo, dict):
        memo[key] = {"sha256": digest, **fingerprint}
        try:
            _write_atomically(memo_path, json.dumps(memo).encode("utf-8"))
        except OSError:
            pass  # a read-only cache: hash again next time
    return digest


def _write_atomically(target: Path, *parts: bytes) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                out.write(part)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_bytes(path: Path | None) -> bytes | None:
    try:
        return path.read_bytes() if path is not None else None
    except OSError:
        return None


def _token_bytes(tokens: Sequence[int]) -> bytes:
    packed = array("i", tokens)
    if packed.itemsize != 4:  # pragma: no cover - every platform llama.cpp runs on has 32-bit int
        raise InputError("the prefix cache needs 32-bit token ids")
    return packed.tobytes()


class PrefixCache:
    """KV states of prompt prefixes for one model and context configuration, in memory and on disk.

    ``config`` names everything besides the model file that a state depends on (llama.cpp build, KV
    types, attention kernel); it is part of every file's header. Thread-safe.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        config: Mapping[str, Any],
        *,
        directory: str | os.PathLike[str] | None,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_bytes: int = DEFAULT_DISK_BYTES,
        min_tokens: int = DEFAULT_MIN_TOKENS,
    ) -> None:
        if memory_bytes < 0 or disk_bytes < 0 or min_tokens < 1:
            raise InputError("prefix cache bounds must be >= 0 bytes and min_tokens >= 1")
        self.model_path = Path(model_path)
        self.config = dict(config)
        self.directory = Path(directory) if directory is not None and disk_bytes > 0 else None
        self.memory_bytes = memory_bytes
        self.disk_bytes = disk_bytes
        self.min_tokens = min_tokens
        self._memory: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()  # key -> (tokens, state)
        self._memory_used = 0
        self._identity: str | None = None
        self._lock = threading.Lock()
        self.hits_memory = self.hits_disk = self.misses = self.writes = 0

    @classmethod
    def from_env(cls, model_path: str | os.PathLike[str], config: Mapping[str, Any]) -> PrefixCache:
        return cls(
            model_path,
            config,
            directory=default_directory(),
            memory_bytes=_parse_bytes("CONSTRAIN_PREFIX_CACHE_MEMORY", DEFAULT_MEMORY_BYTES),
            disk_bytes=_parse_bytes("CONSTRAIN_PREFIX_CACHE_DISK", DEFAULT_DISK_BYTES),
        )

    @property
    def enabled(self) -> bool:
        return self.memory_bytes > 0 or self.directory is not None

    def identity(self) -> str:
        """What a file must have been written for: the model's sha256 and ``config`` (computed once)."""
        if self._identity is None:
            digest = model_digest(self.model_path, self.directory)
            self._identity = json.dumps({"model_sha256": digest, **self.config}, sort_keys=True)
        return self._identity

    def _key(self, tokens: bytes) -> bytes:
        return hashlib.sha256(tokens).digest()

    def path_for(self, tokens: Sequence[int]) -> Path | None:
        """The file that holds (or would hold) the state of ``tokens``; None without a disk cache."""
        if self.directory is None:
            return None
        name = hashlib.sha256(self.identity().encode("utf-8") + b"\0" + _token_bytes(tokens)).hexdigest()[:40]
        return self.directory / f"{name}{_SUFFIX}"

    def get(self, tokens: Sequence[int]) -> bytes | None:
        """The KV state saved for exactly ``tokens``, from memory, else from a file that passes every check."""
        if len(tokens) < self.min_tokens or not self.enabled:
            return None
        packed = _token_bytes(tokens)
        key = self._key(packed)
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None and entry[0] == packed:
                self._memory.move_to_end(key)
                self.hits_memory += 1
                return entry[1]
        state = self._read(tokens, packed)
        with self._lock:
            if state is None:
                self.misses += 1
                return None
            self.hits_disk += 1
            self._remember(key, packed, state)
        return state

    def put(self, tokens: Sequence[int], state: bytes) -> None:
        """Keep ``state`` (the KV state of exactly ``tokens``) in memory, and on disk when not there."""
        if len(tokens) < self.min_tokens or not self.enabled or not state:
            return
        packed = _token_bytes(tokens)
        with self._lock:
            self._remember(self._key(packed), packed, state)
        self._write(tokens, packed, state)

    def discard(self, tokens: Sequence[int]) -> None:
        """Forget ``tokens`` everywhere (llama.cpp refused its state)."""
        packed = _token_bytes(tokens)
        with self._lock:
            entry = self._memory.pop(self._key(packed), None)
            if entry is not None:
                self._memory_used -= len(entry[0]) + len(entry[1])
        path = self.path_for(tokens)
        if path is not None:
            path.unlink(missing_ok=True)

    def disk_usage(self) -> int:
        """Bytes of the cache's files on disk."""
        return sum(size for _, _, size in self._files())

    def vocabulary(self) -> list[bytes] | None:
        """The token pieces kept by ``keep_vocabulary`` for this model, or None (no file, or one that fails
        a check)."""
        data = _read_bytes(self._vocabulary_path())
        if data is None:
            return None
        unpacked = self._unpack(data, _VOCABULARY_MAGIC)
        if unpacked is None:
            return None
        header, start = unpacked
        body = data[start:]
        count = header.get("pieces")
        if not isinstance(count, int) or hashlib.blake2b(body).hexdigest() != header.get(_DIGEST):
            return None
        lengths = array("I")
        lengths.frombytes(body[: 4 * count])
        if len(lengths) != count or sum(lengths) != len(body) - 4 * count:
            return None
        pieces, offset = [], 4 * count
        for size in lengths:
            pieces.append(body[offset : offset + size])
            offset += size
        return pieces

    def keep_vocabulary(self, pieces: Sequence[bytes]) -> None:
        """Write the model's token pieces beside the prefix states (a read-only disk is no error)."""
        path = self._vocabulary_path()
        if path is None:
            return
        body = array("I", [len(piece) for piece in pieces]).tobytes() + b"".join(pieces)
        header = self._pack(_VOCABULARY_MAGIC, {"pieces": len(pieces), _DIGEST: hashlib.blake2b(body).hexdigest()})
        try:
            _write_atomically(path, header, body)
        except OSError:
            pass

    def _vocabulary_path(self) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"vocabulary-{hashlib.sha256(self.identity().encode('utf-8')).hexdigest()[:40]}.bin"

    # -- memory -------------------------------------------------------------------------------------
    def _remember(self, key: bytes, packed: bytes, state: bytes) -> None:
        size = len(packed) + len(state)
        if size > self.memory_bytes:
            return
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= len(old[0]) + len(old[1])
        self._memory[key] = (packed, state)
        self._memory_used += size
        while self._memory_used > self.memory_bytes:
            _, (t, s) = self._memory.popitem(last=False)
            self._memory_used -= len(t) + len(s)

    # -- disk ---------------------------------------------------------------------------------------
    def _header(self, packed: bytes, state: bytes) -> bytes:
        return self._pack(_MAGIC, {"tokens": len(packed) // 4, "state_bytes": len(state), _DIGEST: hashlib.blake2b(state).hexdigest()})

    def _pack(self, magic: bytes, header: dict[str, Any]) -> bytes:
        """``magic``, then the JSON header (with this cache's identity) and its length."""
        text = json.dumps({"identity": self.identity(), **header}, sort_keys=True).encode("utf-8")
        return magic + _HEAD.pack(len(text)) + text

    def _unpack(self, data: bytes, magic: bytes) -> tuple[dict[str, Any], int] | None:
        """The JSON header of a file ``_pack`` wrote for this identity, and where its body starts; else None."""
        start = len(magic) + _HEAD.size
        if len(data) < start or not data.startswith(magic):
            return None
        (length,) = _HEAD.unpack_from(data, len(magic))
        try:
            header = json.loads(data[start : start + length])
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("identity") != self.identity():
            return None
        return header, start + length

    def _read(self, tokens: Sequence[int], packed: bytes) -> bytes | None:
        path = self.path_for(tokens)
        data = _read_bytes(path)
        if path is None or data is None:
            return None
        state = self._check(data, packed)
        if state is not None:
            try:
                os.utime(path)  # the LRU order is the files' mtime
            except OSError:
                pass
        return state

    def _check(self, data: bytes, packed: bytes) -> bytes | None:
        """The state in ``data`` when every check passes, else None."""
        unpacked = self._unpack(data, _MAGIC)
        if unpacked is None:
            return None
        header, body = unpacked
        n_tokens, n_state = header.get("tokens"), header.get("state_bytes")
        if n_tokens != len(packed) // 4 or not isinstance(n_state, int) or len(data) != body + len(packed) + n_state:
            return None
        if data[body : body + len(packed)] != packed:
            return None
        state = data[body + len(packed) :]
        if hashlib.blake2b(state).hexdigest() != header.get(_DIGEST):
            return None
        return state

    def _write(self, tokens: Sequence[int], packed: bytes, state: bytes) -> None:
        path = self.path_for(tokens)
        if path is None:
            return
        header = self._header(packed, state)
        size = len(header) + len(packed) + len(state)
        if size > self.disk_bytes:
            return
        try:
            _write_atomically(path, header, packed, state)
        except OSError:
            return  # a full or read-only disk: the cache is an optimisation
        self.writes += 1
        self._evict(keep=path)

    def _files(self) -> list[tuple[float, Path, int]]:
        if self.directory is None:
            return []
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return []
        for entry in entries:
            if entry.name == _IDENTITY_MEMO:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            found.append((st.st_mtime, Path(entry.path), st.st_size))
        return found

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used files until the directory holds at most ``disk_bytes``."""
        files = sorted(self._files())
        total = sum(size for _, _, size in files)
        for _, path, size in files:
            if total <= self.disk_bytes:
                break
            if path == keep:
                continue
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
