"""The soak's message: a 24-byte header, then the payload.

    magic "RLSK" | total length | stream id | CRC-32 of the payload | sequence number
    (u32, u32, u32, u32, u64; little-endian)

The same format as bench/floor/soak_loadgen.c, the compiled load generator.
"""
import struct
import zlib

MAGIC = 0x4B534C52
HEADER = struct.Struct("<IIIIQ")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 256 * 1024


class BadFrame(ValueError):
    """A header or payload that is not a message anyone sent."""


def frame(stream_id, seq, payload):
    """The bytes of one message."""
    return HEADER.pack(MAGIC, HEADER_SIZE + len(payload), stream_id,
                       zlib.crc32(payload), seq) + payload


def payload_length(header):
    """The payload length a header announces; BadFrame if it is not a header."""
    magic, total, _stream, _crc, _seq = HEADER.unpack(header)
    if magic != MAGIC or not HEADER_SIZE <= total <= HEADER_SIZE + MAX_PAYLOAD:
        raise BadFrame(f"not a message header: {bytes(header[:8]).hex()}")
    return total - HEADER_SIZE


def check(header, payload):
    """(stream id, sequence number) of a received message; BadFrame if its CRC is wrong."""
    _magic, _total, stream, crc, seq = HEADER.unpack(header)
    if zlib.crc32(payload) != crc:
        raise BadFrame(f"stream {stream} message {seq}: CRC-32 mismatch")
    return stream, seq
