"""The agent's HPACK decoder reads what real encoders write.

Checked against the worked examples of RFC 7541 Appendix C (their bytes copied from the RFC)
and against an independent encoder, the `hpack` package (python-hyper, the HPACK of the `h2`
stack), on random header lists: with and without Huffman coding, indexed into the dynamic
table, never-indexed, across dynamic table size updates that evict entries.
"""

from __future__ import annotations

import random

import hpack
import pytest

from agent.hw.hpack import Decoder, HpackError
from agent.hw.hpack_huffman import HuffmanError
from agent.hw.hpack_huffman import decode as huffman_decode

REQUEST = [(":method", "GET"), (":scheme", "http"), (":path", "/")]
AUTHORITY = (":authority", "www.example.com")
THIRD = [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), AUTHORITY]


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param(  # C.3: requests without Huffman coding, one connection
            [
                "828684410f7777772e6578616d706c652e636f6d",
                "828684be58086e6f2d6361636865",
                "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
            ],
            id="C.3",
        ),
        pytest.param(  # C.4: the same requests, Huffman-coded
            [
                "828684418cf1e3c2e5f23a6ba0ab90f4ff",
                "828684be5886a8eb10649cbf",
                "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
            ],
            id="C.4",
        ),
    ],
)
def test_the_rfc_examples_decode_on_one_connection(blocks: list[str]) -> None:
    decoder = Decoder()
    decoded = [decoder.decode(bytes.fromhex(block)) for block in blocks]
    assert decoded == [
        [*REQUEST, AUTHORITY],
        [*REQUEST, AUTHORITY, ("cache-control", "no-cache")],
        [*THIRD, ("custom-key", "custom-value")],
    ]


def test_every_octet_decodes_from_an_independent_huffman_encoder() -> None:
    every = bytes(range(256))
    for data in (every, every[::-1], b"", b"grpc-status", bytes([0, 255] * 50)):
        coded = hpack.huffman.HuffmanEncoder(
            hpack.huffman_constants.REQUEST_CODES, hpack.huffman_constants.REQUEST_CODES_LENGTH
        ).encode(data)
        assert huffman_decode(coded) == data


def _random_headers(rng: random.Random) -> list[tuple[str, str, bool]]:
    names = [":status", "content-type", "grpc-status", "grpc-message", "grpc-encoding", "date"]
    made = []
    for _ in range(rng.randint(1, 14)):
        if rng.random() < 0.5:
            name = rng.choice(names)
        else:
            name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-") for _ in range(1, 30))
        value = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))).decode("latin-1")
        made.append((name, value, rng.random() < 0.1))  # a few never indexed
    return made


@pytest.mark.parametrize("huffman", [True, False])
def test_random_header_lists_from_an_independent_encoder(huffman: bool) -> None:
    rng = random.Random(7541 + huffman)
    encoder = hpack.Encoder()
    decoder = Decoder()
    for block in range(600):
        if block % 40 == 39:  # the encoder shrinks or grows its table: a size update
            encoder.header_table_size = rng.choice([0, 64, 256, 1024, 4096])
        headers = _random_headers(rng)
        if block % 3 == 0:
            headers += headers[: rng.randint(1, len(headers))]  # repeats: indexed references
        # some 2 KiB a block against a table of at most 4 KiB: entries are evicted all along
        wire = encoder.encode(
            [(n, v.encode("latin-1"), never) for n, v, never in headers], huffman=huffman
        )
        assert decoder.decode(wire) == [(n, v) for n, v, _ in headers]


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ("80", "index 0"),
        ("be", "index 62 with an empty dynamic table"),
        ("ff", "an integer cut short"),
        ("ffffffffffff0f", "an integer over 32 bits"),
        ("4085f2b24a", "a string cut short"),
        ("3fe220", "a table size update over the 4096 this side allows"),
        ("82 3f0f", "a table size update after a header field"),
        ("0081ff 80", "a literal name of eight ones: padding, no symbol"),
    ],
)
def test_broken_blocks_are_errors(block: str, why: str) -> None:
    with pytest.raises(HpackError):
        Decoder().decode(bytes.fromhex(block.replace(" ", "")))


@pytest.mark.parametrize(
    ("coded", "why"),
    [
        ("ffffff", "24 ones: padding longer than 7 bits"),
        ("00", "'0' then 000: padding that is not EOS's ones"),
        ("fffffffc", "EOS (30 ones) inside the string"),
    ],
)
def test_broken_huffman_strings_are_errors(coded: str, why: str) -> None:
    with pytest.raises(HuffmanError):
        huffman_decode(bytes.fromhex(coded))


def test_a_size_update_to_zero_empties_the_table() -> None:
    decoder = Decoder()
    assert decoder.decode(bytes.fromhex("400161017a")) == [("a", "z")]  # indexed as 62
    assert decoder.decode(bytes.fromhex("be")) == [("a", "z")]
    with pytest.raises(HpackError):
        decoder.decode(bytes.fromhex("20be"))  # size 0, then 62 is gone


def test_a_block_naming_megabytes_by_index_is_refused() -> None:
    """A few bytes of a header block can name a 4 KiB table entry again and again."""
    decoder = Decoder()
    big = b"\x40\x01x\x7f\xa1\x1e" + b"v" * 4000  # x: 4000 v, indexed (4000 = 127 + 33 + 30 * 128)
    assert decoder.decode(big) == [("x", "v" * 4000)]
    assert len(decoder.decode(b"\xbe" * 16)) == 16  # 64 KiB and a little: at the limit
    with pytest.raises(HpackError):
        decoder.decode(b"\xbe" * 17)


def test_random_bytes_decode_or_are_a_decoding_error() -> None:
    rng = random.Random(41)
    decoder = Decoder()
    decoded = 0
    for _ in range(20_000):
        block = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        try:
            decoder.decode(block)
            decoded += 1
        except HpackError:
            decoder = Decoder()  # a decoding error ends the connection (RFC 7541 section 2.3.3)
    assert 500 < decoded < 19_000  # both outcomes, and nothing else raised
