"""Name escaping of processed changelogs, exactly as libgfchangelog and syncdutils.

Only three bytes are escaped in ``pgfid/bname`` and delete-path fields:
``%`` -> ``%25`` first, then space -> ``%20``, then newline -> ``%0A``.
Decoding runs in the opposite order (``%20``, ``%0A``, then ``%25``), which is
unambiguous because every literal ``%`` was escaped first.

Names are Python ``str`` decoded from bytes with ``surrogateescape`` (what
:func:`os.fsdecode` does), so non-UTF-8 bytes survive a round trip; the
``*_bytes`` variants work on raw bytes.

>>> escape("100%20 sure\\n")
'100%2520%20sure%0A'
>>> unescape(escape("a b%c\\nd")) == "a b%c\\nd"
True
"""

from __future__ import annotations

__all__ = ["escape", "unescape", "escape_bytes", "unescape_bytes"]


def escape(name: str) -> str:
    """Escape a name the way libgfchangelog writes it into processed text.

    >>> escape("my notes.txt")
    'my%20notes.txt'
    """
    if "%" in name:
        name = name.replace("%", "%25")
    if " " in name:
        name = name.replace(" ", "%20")
    if "\n" in name:
        name = name.replace("\n", "%0A")
    return name


def unescape(text: str) -> str:
    """Undo :func:`escape` (syncdutils ``unescape_space_newline``).

    >>> unescape("my%20notes%25.txt")
    'my notes%.txt'
    """
    if "%" not in text:
        return text
    return text.replace("%20", " ").replace("%0A", "\n").replace("%25", "%")


def escape_bytes(name: bytes) -> bytes:
    """Byte version of :func:`escape`.

    >>> escape_bytes(b"a b")
    b'a%20b'
    """
    if b"%" in name:
        name = name.replace(b"%", b"%25")
    if b" " in name:
        name = name.replace(b" ", b"%20")
    if b"\n" in name:
        name = name.replace(b"\n", b"%0A")
    return name


def unescape_bytes(text: bytes) -> bytes:
    """Byte version of :func:`unescape`.

    >>> unescape_bytes(b"a%20b%0Ac%25")
    b'a b\\nc%'
    """
    if b"%" not in text:
        return text
    return text.replace(b"%20", b" ").replace(b"%0A", b"\n").replace(b"%25", b"%")
