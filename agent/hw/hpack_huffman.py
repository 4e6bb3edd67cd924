"""The static Huffman code of HPACK (RFC 7541 section 5.2 and Appendix B), decoding only.

`CODE_LENGTHS` is Appendix B's table as data: the length in bits of the code of each symbol,
0 to 255, then EOS (256), sixteen symbols a row. The code itself follows from the lengths:
Appendix B's code is canonical (shorter codes first; codes of one length consecutive, in
symbol order), e.g. '0' (48) is 00000, ' ' (32) is 010100, '!' (33) is 11111110|00 and EOS is
thirty ones, as the table's "code as bits" column shows.
"""

from __future__ import annotations

# fmt: off
CODE_LENGTHS = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,  # 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,  # 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,  # ' ' to '/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,  # '0' to '?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  # '@' to 'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,  # 'P' to '_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,  # '`' to 'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,  # 'p' to 127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,  # 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,  # 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,  # 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,  # 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,  # 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,  # 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,  # 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,  # 240-255
    30,  # EOS
)
# fmt: on
EOS = 256
_MAX_BITS = 30


class HuffmanError(ValueError):
    """Not a string Appendix B's code makes (RFC 7541 section 5.2: a decoding error)."""


def _canonical() -> tuple[list[int], list[int], list[int], list[int]]:
    """Per length: the first code, how many codes, where its symbols start in `symbols`."""
    symbols = sorted(range(len(CODE_LENGTHS)), key=lambda s: (CODE_LENGTHS[s], s))
    first = [0] * (_MAX_BITS + 2)
    count = [0] * (_MAX_BITS + 2)
    start = [0] * (_MAX_BITS + 2)
    for length in CODE_LENGTHS:
        count[length] += 1
    code = index = 0
    for length in range(1, _MAX_BITS + 1):
        first[length], start[length] = code, index
        code = (code + count[length]) << 1
        index += count[length]
    return first, count, start, symbols


_FIRST, _COUNT, _START, _SYMBOLS = _canonical()


def decode(data: bytes) -> bytes:
    """The octets Huffman-coded in `data`; padding must be under 8 bits of EOS's ones."""
    out = bytearray()
    code = length = 0
    for octet in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((octet >> shift) & 1)
            length += 1
            offset = code - _FIRST[length]
            if 0 <= offset < _COUNT[length]:
                symbol = _SYMBOLS[_START[length] + offset]
                if symbol == EOS:
                    raise HuffmanError("EOS inside a string")
                out.append(symbol)
                code = length = 0
            elif length >= _MAX_BITS:
                raise HuffmanError("no such code")
    if length > 7 or code != (1 << length) - 1:
        raise HuffmanError("padding is not a prefix of EOS")
    return bytes(out)
