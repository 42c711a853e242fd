"""Read a TensorFlow (V2 "tensor bundle") checkpoint without TensorFlow.

A checkpoint is a pair of files:
- ``PREFIX.index``: a LevelDB-style sorted table mapping each variable name to a
  ``BundleEntryProto`` (dtype, shape, byte offset and size in the data file);
  the entry with the empty key is the bundle header, which we skip.
- ``PREFIX.data-00000-of-00001``: the raw little-endian tensor bytes.

Only what musicnn's checkpoints use is supported: one data shard, no
compression, no partitioned (sliced) variables.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes CRC

# tensorflow/core/framework/types.proto values we may meet in a checkpoint.
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    19: np.float16,
}


class CheckpointError(ValueError):
    """The files are not a checkpoint this reader understands."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes):
    """Yield (field_number, wire_type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _block_entries(block: bytes):
    """Yield (key, value) of one table block (prefix-compressed keys)."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def _read_block(table: bytes, handle: bytes) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if table[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    return table[offset:offset + size]


def _parse_entry(value: bytes) -> tuple[np.dtype, tuple[int, ...], int, int]:
    dtype, shape, offset, size = None, (), 0, 0
    for field, _, v in _proto_fields(value):
        if field == 1:
            dtype = v
        elif field == 2:
            dims = []
            for f, _, dim in _proto_fields(v):
                if f == 2:
                    dims.append(next((s for g, _, s in _proto_fields(dim) if g == 1), 0))
            shape = tuple(dims)
        elif field == 3 and v != 0:
            raise CheckpointError("multi-shard checkpoints are not supported")
        elif field == 4:
            offset = v
        elif field == 5:
            size = v
        elif field == 7:
            raise CheckpointError("partitioned variables are not supported")
    if dtype not in _DTYPES:
        raise CheckpointError(f"unsupported tensor dtype enum {dtype}")
    return np.dtype(_DTYPES[dtype]), shape, offset, size


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Return every variable of the checkpoint at ``prefix`` as a numpy array.

    ``prefix`` is the path without the ``.index`` suffix; musicnn's prefix is the
    model folder itself plus ``/`` (its files are named ``.index`` and ``.data-…``).
    """
    prefix = str(prefix)
    index_path = Path(prefix + ".index")
    data_path = Path(prefix + ".data-00000-of-00001")
    table = index_path.read_bytes()
    if len(table) < _FOOTER_SIZE or struct.unpack_from("<Q", table, len(table) - 8)[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{index_path} is not a checkpoint index table")
    footer = table[-_FOOTER_SIZE:]
    _, pos = _varint(footer, 0)  # metaindex handle: offset
    _, pos = _varint(footer, pos)  # metaindex handle: size
    index_block = _read_block(table, footer[pos:])

    data = np.memmap(data_path, dtype=np.uint8, mode="r")
    tensors: dict[str, np.ndarray] = {}
    for _, handle in _block_entries(index_block):
        for key, value in _block_entries(_read_block(table, handle)):
            if not key:  # the bundle header
                continue
            dtype, shape, offset, size = _parse_entry(value)
            raw = np.asarray(data[offset:offset + size])
            tensors[key.decode()] = raw.view(dtype).reshape(shape).copy()
    return tensors
