"""HPACK (RFC 7541), the header compression of HTTP/2: a complete decoder, and the plain
encoding the agent's requests need.

The decoder keeps the connection's dynamic table (section 2.3) across header blocks, follows
the peer's size updates up to the size this side allows (4096, the default, never changed by
the agent's SETTINGS), and reads every representation of section 6 with integer and string
literals, Huffman-coded or not (`agent.hw.hpack_huffman`). Requests are encoded as literals
without indexing and without Huffman (section 6.2.2), which any decoder reads. Names and
values are octets (RFC 9113 section 8.2.1), held as latin-1 strings: one character an octet.
"""

from __future__ import annotations

from collections import deque

from agent.hw.hpack_huffman import HuffmanError
from agent.hw.hpack_huffman import decode as huffman_decode

Header = tuple[str, str]
DEFAULT_TABLE_SIZE = 4096
MAX_HEADER_LIST_SIZE = 64 * 1024
_ENTRY_OVERHEAD = 32  # section 4.1
_MAX_INTEGER = 1 << 32

# Appendix A: the static table, indices 1 to 61
STATIC_TABLE: tuple[Header, ...] = (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
)  # fmt: skip


class HpackError(ValueError):
    """A header block this decoder cannot read: a COMPRESSION_ERROR (RFC 9113 section 4.3)."""


class Decoder:
    """One connection's header blocks, decoded in the order they came."""

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.allowed = max_table_size  # what SETTINGS_HEADER_TABLE_SIZE lets the peer use
        self.table_size = max_table_size  # the peer's current maximum (section 4.2)
        self._table: deque[Header] = deque()  # newest first: index 62 is _table[0]
        self._used = 0

    def decode(self, block: bytes, max_list_size: int = MAX_HEADER_LIST_SIZE) -> list[Header]:
        """The block's header list; an error past `max_list_size` (sizes as in section 4.1):
        a few bytes of indices can name kilobytes of the table each."""
        headers: list[Header] = []
        pos = listed = 0
        while pos < len(block):
            header, pos = self._representation(block, pos, first=not headers)
            if header is not None:
                headers.append(header)
                listed += _size(header)
                if listed > max_list_size:
                    raise HpackError(f"a header list over {max_list_size} bytes")
        return headers

    def _representation(self, block: bytes, pos: int, first: bool) -> tuple[Header | None, int]:
        """One field representation of section 6 (None: a table size update)."""
        kind = block[pos]
        if kind & 0x80:  # 6.1 indexed
            index, pos = _integer(block, pos, 7)
            return self._entry(index), pos
        if kind & 0x40:  # 6.2.1 literal with incremental indexing
            header, pos = self._literal(block, pos, 6)
            self._add(header)
            return header, pos
        if kind & 0x20:  # 6.3 dynamic table size update
            if not first:
                raise HpackError("table size update after a header field")
            size, pos = _integer(block, pos, 5)
            if size > self.allowed:
                raise HpackError(f"table size {size} over {self.allowed}")
            self.table_size = size
            self._evict(0)
            return None, pos
        return self._literal(block, pos, 4)  # 6.2.2 without indexing, 6.2.3 never indexed

    def _literal(self, block: bytes, pos: int, prefix: int) -> tuple[Header, int]:
        index, pos = _integer(block, pos, prefix)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _entry(self, index: int) -> Header:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if 0 <= dynamic < len(self._table):
            return self._table[dynamic]
        raise HpackError(f"index {index} is in neither table")

    def _add(self, header: Header) -> None:
        size = _size(header)
        self._evict(size)
        if size <= self.table_size:  # a larger entry only empties the table (section 4.4)
            self._table.appendleft(header)
            self._used += size

    def _evict(self, room: int) -> None:
        while self._table and self._used + room > self.table_size:
            self._used -= _size(self._table.pop())


def _size(header: Header) -> int:
    return len(header[0]) + len(header[1]) + _ENTRY_OVERHEAD


def _integer(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """Section 5.1: an integer with an N-bit prefix starting at `block[pos]`."""
    limit = (1 << prefix) - 1
    value = block[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(block):
            raise HpackError("integer cut short")
        octet = block[pos]
        pos += 1
        value += (octet & 0x7F) << shift
        shift += 7
        if value > _MAX_INTEGER:
            raise HpackError("integer too large")
        if not octet & 0x80:
            return value, pos


def _string(block: bytes, pos: int) -> tuple[str, int]:
    """Section 5.2: a string literal, Huffman-coded when its first bit is set."""
    if pos >= len(block):
        raise HpackError("string missing")
    huffman = bool(block[pos] & 0x80)
    length, pos = _integer(block, pos, 7)
    end = pos + length
    if end > len(block):
        raise HpackError("string cut short")
    raw = bytes(block[pos:end])
    try:
        text = huffman_decode(raw) if huffman else raw
        return text.decode("latin-1"), end
    except HuffmanError as err:
        raise HpackError(str(err)) from None


def encode_integer(value: int, prefix: int, flags: int = 0) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_plain(headers: list[Header]) -> bytes:
    """A header block of literals without indexing, new names, no Huffman (section 6.2.2)."""
    out = bytearray()
    for name, value in headers:
        out.append(0)
        for text in (name.encode("latin-1"), value.encode("latin-1")):
            out += encode_integer(len(text), 7) + text
    return bytes(out)
