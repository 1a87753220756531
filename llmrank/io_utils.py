"""Small I/O helpers shared by every module that reads or writes files.

Writing: every file llmrank writes goes to a temp file in the same folder first and is renamed
over the target only when complete (``os.replace`` is atomic on POSIX and Windows), so an
interrupted or failed job never leaves a half-written file and never replaces a good one.
:func:`atomic_path` is the one implementation for files (:func:`atomic_open` and the writers wrap
it; a writer that takes a file name, such as ``safetensors``' ``save_file``, uses it directly);
:func:`staged_dir` is the one for folders (build in a temp folder beside the target, then move).

Reading: :func:`text_lines` yields a text file's lines and turns every decoding problem into a
:class:`FormatError` that names the file and line ("not UTF-8 text", with what to do). A UTF-8
byte-order mark (what Windows Notepad writes) is accepted and dropped; UTF-16/UTF-32 files and
binary files are rejected.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


class FormatError(ValueError):
    """A malformed input file; the one-line message names the file (and line) and what to do."""


# --------------------------------------------------------------------------- writing
@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp file name next to ``path`` (``.NAME.*.tmp``), renamed over ``path`` only if the block
    succeeds; on any exception (including Ctrl-C) the temp file is removed and ``path`` is left
    exactly as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[TextIO]:
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds
    (:func:`atomic_path`). Text mode, UTF-8, no newline translation."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding="utf-8", newline="") as handle:
        yield handle


@contextmanager
def staged_dir(parent: str | os.PathLike, prefix: str = ".tmp-") -> Iterator[Path]:
    """A new temp folder ``PREFIX*`` inside ``parent`` (created if missing) for building an output
    folder; the caller moves the finished result out (``os.replace``, :func:`replace_dir`). Whatever
    is still in it on exit, after success or failure, is removed."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield staged
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a half-written file."""
    with atomic_open(path) as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON (non-ASCII kept as is), atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def cache_root() -> Path:
    """llmrank's cache folder: ``$LLMRANK_CACHE``, default ``~/.cache/llmrank`` (teacher scores,
    Lucene indexes)."""
    return Path(os.environ.get("LLMRANK_CACHE", Path.home() / ".cache" / "llmrank"))


# --------------------------------------------------------------------------- reading
_UTF8_BOM = b"\xef\xbb\xbf"
#: byte-order marks of encodings we do not read; UTF-32-LE first (it starts like UTF-16-LE)
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
#: compressed files people pass by mistake (MS MARCO and BEIR ship .gz and .zip)
_ARCHIVES = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip FILE)"),
    (b"PK\x03\x04", "a zip archive", "unzip it and give the file inside"),
)
_RESAVE = "re-save it as UTF-8 (e.g. `iconv -t UTF-8`, or 'UTF-8' in your editor's Save As)"


def check_readable_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`Path` if it is an existing regular file, else a one-line error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    if path.is_dir():
        raise FormatError(f"{what} {str(path)!r} is a directory, expected a file")
    return path


def _sniff_encoding(path: Path, head: bytes) -> int:
    """Number of leading bytes to skip (a UTF-8 BOM); a FormatError for UTF-16/32 and binary files."""
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise FormatError(f"{path}: not UTF-8 text (it starts with a {name} byte-order mark); {_RESAVE}")
    for magic, kind, fix in _ARCHIVES:
        if head.startswith(magic):
            raise FormatError(f"{path}: not UTF-8 text ({kind}); {fix}")
    if b"\x00" in head:
        # UTF-8 text never contains NUL; UTF-16 without a BOM and binary files (gzip, parquet,
        # safetensors, ...) almost always do within their first bytes.
        raise FormatError(f"{path}: not UTF-8 text (binary data or UTF-16 without a byte-order mark); {_RESAVE}")
    return len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0


def text_lines(path: str | os.PathLike, what: str = "input") -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` for every line of a UTF-8 text file (newline kept; 1-based).

    Raises :class:`FormatError` naming the file and line for anything that is not UTF-8 text,
    and ``FileNotFoundError`` / ``FormatError`` for a missing path or a directory.
    """
    path = check_readable_file(path, what)
    with path.open("rb") as raw:
        skip = _sniff_encoding(path, raw.read(4096))
        raw.seek(skip)
        for lineno, data in enumerate(raw, start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FormatError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{data[err.start]:02x} at column {err.start + 1}); "
                    f"{_RESAVE}"
                ) from None
            if "\x00" in line:
                raise FormatError(f"{path}:{lineno}: not UTF-8 text (NUL byte: binary data?); {_RESAVE}")
            yield lineno, line


def read_text(path: str | os.PathLike, what: str = "input") -> str:
    """The whole file as text, with the same checks and messages as :func:`text_lines`."""
    return "".join(line for _, line in text_lines(path, what))


def replace_dir(staged: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move the finished folder ``staged`` to ``out``; an existing ``out`` is swapped aside first
    and removed only once ``staged`` is in place (restored if the move fails)."""
    staged, out = Path(staged), Path(out)
    if not out.exists():
        os.replace(staged, out)
        return
    old = out.with_name(f".tmp-old-{out.name}-{os.getpid()}")
    os.replace(out, old)
    try:
        os.replace(staged, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def json_object(line: str, where: str, expected: str) -> dict[str, Any]:
    """One JSONL line that must hold a JSON object; :class:`FormatError` naming ``where`` (file:line)
    and what was ``expected`` otherwise."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: not valid JSON ({exc.msg}); expected {expected}") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: found a JSON {type(obj).__name__}; expected {expected}")
    return obj
