"""Reading the text files a user hands to hiwar (configs, JSONL datasets, replies, rating sheets).

Every such file is read through :func:`read_text` or :func:`iter_lines`, so every one fails the same way: a
file that is not UTF-8 (a stray byte, even in a comment) is one line naming the file, the line and the byte
offset, never a ``UnicodeDecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hiwar.errors import DataError, HiwarError

UTF8_HINT = "save the file as UTF-8"


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError, hint: str, first_line: int = 1, base: int = 0) -> str:
    """The one-line message for a decoding error in ``data`` (which starts at line ``first_line``, byte ``base``)."""
    line = first_line + data.count(b"\n", 0, err.start)
    return (
        f"{path}: line {line} (byte offset {base + err.start}): byte 0x{data[err.start]:02x} is not UTF-8 text; {hint}"
    )


def read_text(path: str | Path, *, error: type[HiwarError] = DataError, hint: str = UTF8_HINT) -> str:
    """The whole file as text (a leading byte-order mark, as spreadsheets and some editors write, is dropped).

    Args:
        path: the file.
        error: the HiwarError raised (``ConfigError`` for configs, ``DataError`` for data).
        hint: how to fix a file that is not UTF-8.

    Raises:
        error: the file cannot be read, or is not UTF-8 (naming the line and byte offset).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read the file ({err.strerror or err})") from err
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise error(_not_utf8(path, data, err, hint)) from err


def iter_lines(
    path: str | Path, *, error: type[HiwarError] = DataError, hint: str = UTF8_HINT
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of a file (1-based, newline kept, a leading byte-order mark
    dropped), read as it goes.

    Raises:
        error: as :func:`read_text`, at the first line that is not UTF-8.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as err:
        raise error(f"{path}: cannot read the file ({err.strerror or err})") from err
    with fh:
        offset = 0
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error(_not_utf8(path, raw, err, hint, number, offset)) from err
            offset += len(raw)
            yield number, text.removeprefix("\ufeff") if number == 1 else text
