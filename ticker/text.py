"""The plain-text and link rules every field of an item obeys, free of any model.

One rule each, written once: :func:`text_problem` for every plain-text field
(headline, correction, author, photo captions...) and :func:`url_problem` for
every link. The browser side agrees through the shared vectors in
``tests/vectors/`` (``text.json``, ``urls.json``), read by the model tests and by
a test that asks Chromium's URL parser.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

MAX_URL = 2048

ZWNJ, ZWJ = "\u200c", "\u200d"
"""Joiners are format characters that text needs: ZWNJ in Persian and Indic words, ZWJ in emoji sequences."""
BLACK_FLAG, CANCEL_TAG = "\U0001f3f4", "\U000e007f"
TAGS = range(0xE0020, 0xE0080)
"""Tag characters: allowed only as an emoji flag sequence (black flag, tags, cancel tag), e.g. Scotland's flag."""


def unfit(c: str) -> bool:
    """Characters no text field may hold: controls, lone surrogates (not valid UTF-8) and the
    Unicode noncharacters (U+FFFE, U+FFFF, U+FDD0-U+FDEF...), which XML feeds cannot carry."""
    code = ord(c)
    return unicodedata.category(c) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _flag_tags(value: str) -> set[int]:
    """Positions of tag characters that belong to a complete emoji flag sequence."""
    allowed: set[int] = set()
    i = 0
    while i < len(value):
        if value[i] == BLACK_FLAG:
            j = i + 1
            while j < len(value) and ord(value[j]) in TAGS:
                j += 1
            if j > i + 2 and value[j - 1] == CANCEL_TAG:
                allowed.update(range(i + 1, j))
            i = j
        else:
            i += 1
    return allowed


def text_problem(value: str) -> str | None:
    """Why ``value`` is not plain text a page can show as typed, or None.

    The one rule for every plain-text field. Refused: controls, surrogates and
    noncharacters; line and paragraph separators; and every invisible format
    character (Unicode category Cf), bidi overrides, embeddings and isolates
    (U+202A-U+202E, U+2066-U+2069) first among them, since they reorder what a
    reader or an editor's confirmation sees. Kept: ZWNJ and ZWJ between two
    characters, and tag characters inside an emoji flag sequence. Nothing is
    silently stripped: the writer learns which character, where.
    """
    # Every character the rule refuses is unprintable to Python (categories Cc, Cs, Cf,
    # Zl, Zp, and the noncharacters, which are unassigned): most text takes one C call.
    return None if value.isprintable() else scan(value)


def scan(value: str) -> str | None:
    """:func:`text_problem`, one character at a time."""
    flags: set[int] | None = None
    for i, c in enumerate(value):
        category = unicodedata.category(c)
        if unfit(c) or category in ("Zl", "Zp"):
            return f"must not contain control characters, surrogates or noncharacters (U+{ord(c):04X} at {i + 1})"
        if category != "Cf":
            continue
        if c in (ZWNJ, ZWJ) and 0 < i < len(value) - 1:
            continue
        if ord(c) in TAGS:
            flags = _flag_tags(value) if flags is None else flags
            if i in flags:
                continue
        kind = (
            "bidi control" if 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 else "invisible format character"
        )
        name = unicodedata.name(c, "unnamed")
        return f"must not contain the {kind} U+{ord(c):04X} {name} (at {i + 1}); remove it"
    return None


_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^/?#\\@\[\]:]*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]*))?(?P<rest>[/?#].*)?",
    re.DOTALL,
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def url_problem(value: str) -> str | None:
    """Why ``value`` is not a link Python and every browser read alike, or None.

    Only ``http(s)://host[:port][/path][?query][#fragment]``: an ASCII host name
    (IDNs as punycode) or an IP literal in its one plain form, no user or password
    (``@`` before the host), no backslash anywhere (browsers read it as ``/``),
    no percent-escape in the host, no host ending in a number that is not a
    dotted IPv4 address (browsers read ``0x7f.1`` as 127.0.0.1). Each of these
    is a way for Python's ``urlsplit`` and the WHATWG URL parser to see
    different hosts.
    """
    if len(value) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if any(c.isspace() or unfit(c) or unicodedata.category(c) == "Cf" for c in value):
        return "must not contain spaces, control or format characters"
    if "\\" in value:
        return "must not contain a backslash (browsers read it as '/')"
    if "@" in re.split(r"[/?#]", value.partition("://")[2], maxsplit=1)[0]:
        return "must not carry a user name or password"
    match = _URL.fullmatch(value)
    if match is None or match["scheme"].lower() not in ("http", "https"):
        return "must be an absolute http or https URL"
    host, port = match["host"].lower(), match["port"]
    if port is not None and (not port or int(port) > 65535):
        return "has an invalid port"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "has an invalid IPv6 address"
        return None
    labels = host.removesuffix(".").split(".")
    if not host or not all(_LABEL.fullmatch(label) for label in labels):
        return "must name its host in ASCII letters, digits, '-' and '.' (IDNs as punycode)"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            address = ipaddress.IPv4Address(".".join(labels))
        except ValueError:
            return "must give an IPv4 host as four decimal numbers"
        if str(address) != ".".join(labels):
            return "must give an IPv4 host as four decimal numbers"
    return None


def is_local_host(host: str) -> bool:
    """Loopback or this machine's any-address: where a plain-http image origin may be allowed."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
