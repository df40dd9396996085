"""Bytes to text lines: gzip (damage located by line), encodings decided line by line, line ends.

Used by every text loader through :mod:`stgnn.data.validate`; errors are
:class:`~stgnn.data.schema.DataError` naming the file and line.
"""
from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from pathlib import Path

import numpy as np

from stgnn.data.schema import CleaningReport, DataError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (the extension is ignored).

    Raises:
        DataError: corrupt gzip data (truncated, bad CRC, flipped bits, trailing garbage), located
            at the first line that could not be fully decompressed.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        if "CRC" in str(e) or "length" in str(e):  # the damage may be anywhere before the checksum
            raise DataError(path, 1, "gzip", f"corrupt gzip data ({e}): the content does not match its "
                            "checksum. Re-download or re-compress the file") from None
        line = _gunzip_prefix(data).count(b"\n") + 1
        raise DataError(path, line, "gzip", f"corrupt gzip data ({e}); decompression fails after "
                        f"{line - 1:,} complete lines. Re-download or re-compress the file") from None


def _gunzip_prefix(data: bytes) -> bytes:
    """What decompresses from the start of a damaged gzip stream (to locate the damage): the
    output is collected as it comes, so a CRC error at the end still yields every line."""
    out = []
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        try:
            while chunk := f.read1(1 << 16):
                out.append(chunk)
        except (OSError, EOFError, zlib.error):
            pass
    return b"".join(out)


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def decode_lines(data: bytes, path: str | Path, encoding: str | None, report: CleaningReport
                 ) -> tuple[str, dict[int, str]]:
    """Decode a text file, line by line where needed.

    ``encoding`` given: strict, the first undecodable byte is a :class:`DataError`. Otherwise
    UTF-8 (a byte-order mark is dropped); a file whose non-ASCII lines are all invalid UTF-8 is
    read as Latin-1 (the official TSMC2014 release is Latin-1), with a note. A file that MIXES
    valid UTF-8 lines with invalid ones is not re-decoded as a whole (that would garble its valid
    text): each invalid line is returned as a bad line (read as Latin-1 so the rest of the line
    still parses) for the caller to flag under field ``encoding``.

    Returns:
        the text, and ``{1-based line: message}`` of lines with an encoding problem.

    Raises:
        DataError: undecodable bytes under an explicit ``encoding``; CR-only line endings.
    """
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as e:
            if isinstance(e, LookupError):
                raise ValueError(f"unknown encoding {encoding!r}") from None
            line = data[: e.start].count(b"\n") + 1
            raise DataError(path, line, "encoding", f"not valid {encoding}: {e.reason}; "
                            "pass encoding=None to auto-detect UTF-8/Latin-1") from None
        return _check_line_ends(text, path), {}
    try:
        return _check_line_ends(data.decode("utf-8-sig"), path), {}
    except UnicodeDecodeError:
        pass
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = data.split(b"\n")
    utf8_ok, bad = [], {}
    for i, raw in enumerate(lines):
        if _NON_ASCII.search(raw) is None:
            continue
        try:
            raw.decode("utf-8")
            utf8_ok.append(i)
        except UnicodeDecodeError as e:
            bad[i] = e
    if not utf8_ok:  # consistently not UTF-8: one 8-bit encoding for the whole file
        report.notes.append("decoded as Latin-1 (not valid UTF-8)")
        return _check_line_ends(data.decode("latin-1"), path), {}
    out = [raw.decode("latin-1") if i in bad else raw.decode("utf-8") for i, raw in enumerate(lines)]
    messages = {i + 1: (f"not valid UTF-8 (byte 0x{lines[i][e.start]:02x} at column {e.start + 1}) while "
                        f"{len(utf8_ok):,} other lines are UTF-8 with non-ASCII text; fix this line's "
                        "encoding, or pass encoding='latin-1' if the whole file is Latin-1")
                for i, e in bad.items()}
    report.notes.append(f"mixed encodings: {len(bad):,} lines are not valid UTF-8 "
                        f"(e.g. line {min(messages)}); the rest was read as UTF-8")
    return _check_line_ends("\n".join(out), path), messages


def decode(data: bytes, path: str | Path, encoding: str | None, report: CleaningReport) -> str:
    """The text of :func:`decode_lines`, for callers that only look (e.g. format sniffing)."""
    return decode_lines(data, path, encoding, report)[0]


def _check_line_ends(text: str, path: str | Path) -> str:
    if "\r" in text and "\n" not in text:
        raise DataError(path, 1, "line", "lines end with a bare CR (classic Mac line endings), so the whole "
                        "file is one line; convert it to LF (or CRLF) line endings")
    return text


def split_lines(text: str) -> tuple[list[str], np.ndarray]:
    """Non-blank physical lines and their 1-based line numbers.

    We split on ``"\\n"`` only: ``str.splitlines`` would also break on ``\\x85``, ``\\x1c`` etc.,
    which occur inside Latin-1 venue names, and shift every later line number. Plain list
    comprehensions here beat pandas' object-dtype string methods by several times.

    Returns:
        lines: ``L`` strings (``\\r\\n`` endings normalised); line_no: ``(L,)`` int64.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    everything = text.split("\n")
    if everything[-1] == "":  # the final newline ends the last line; it does not start one
        everything.pop()
    keep = [i for i, line in enumerate(everything) if line and not line.isspace()]
    if len(keep) == len(everything):
        return everything, np.arange(1, len(keep) + 1, dtype=np.int64)
    return [everything[i] for i in keep], np.asarray(keep, dtype=np.int64) + 1
