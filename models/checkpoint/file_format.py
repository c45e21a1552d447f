"""What a weights file is, told from its bytes: safetensors as its specification says, else what.

    >>> import tempfile, torch, safetensors.torch
    >>> path = tempfile.mkdtemp() + "/w.safetensors"
    >>> safetensors.torch.save_file({"W_E": torch.zeros(2, 3)}, path)
    >>> safetensors_problem(path) is None
    True

The safetensors format (https://github.com/huggingface/safetensors#format): 8 bytes, an
unsigned little-endian integer N; N bytes of UTF-8 JSON, a dict from tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` plus an optional ``"__metadata__"`` dict
of strings; then the byte buffer, which the tensors' offsets (relative to its start) cover
exactly, without holes or overlaps.

The format is decided by parsing all of that, never by a magic byte: the first byte of a
safetensors file is the low byte of N, so a valid file whose header is 128 bytes long modulo
256 starts with 0x80, the byte that opens a pickle. A file is called a pickle or a zip archive
only once it is known not to be a valid safetensors file.
"""

import json
import math
import os
import struct
from pathlib import Path

# bytes per element of each dtype safetensors writes and torch can hold
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """None if ``path`` is a valid safetensors file, else what is wrong with it, in a few words."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"only {size} bytes long, shorter than the 8-byte header length"
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            return f"its header length {n} is over the limit of {MAX_HEADER_BYTES} bytes"
        if n > size - 8:
            return f"its header length {n} runs past the end of the {size}-byte file"
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        return f"its {n}-byte header is not JSON ({e})"
    if not isinstance(header, dict):
        return f"its header is JSON but a {type(header).__name__}, not a dict"
    return _entries_problem(header, size - 8 - n)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _entries_problem(header: dict, buffer_bytes: int) -> str | None:
    """What is wrong with a parsed header's entries, given the bytes after the header."""
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return "its __metadata__ is not a dict of strings"
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            return f"tensor {name!r} is not described by dtype, shape and data_offsets"
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_BYTES:
            return f"tensor {name!r} has dtype {dtype!r}, not one of {', '.join(DTYPE_BYTES)}"
        if not isinstance(shape, list) or not all(_natural(d) for d in shape):
            return f"tensor {name!r} has shape {shape!r}, not a list of non-negative integers"
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)):
            return f"tensor {name!r} has data_offsets {offsets!r}, not two non-negative integers"
        begin, end = offsets
        if not begin <= end <= buffer_bytes:
            return f"tensor {name!r} has data_offsets {offsets} outside the {buffer_bytes} data bytes"
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            return f"tensor {name!r} holds {end - begin} bytes, not the {math.prod(shape)} {dtype} its shape needs"
        spans.append((begin, end, name))
    covered = 0
    for begin, end, name in sorted(spans):
        if begin != covered:
            return f"its data has a hole or an overlap at byte {covered} (tensor {name!r} starts at {begin})"
        covered = end
    if covered != buffer_bytes:
        return f"its tensors cover {covered} of the {buffer_bytes} data bytes after the header"
    return None


def _natural(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def looks_like(path: str | os.PathLike) -> str | None:
    """What a file that is not valid safetensors seems to be, from its bytes, or None.

    A pickle of protocol 2 or later opens with PROTO (0x80) and the protocol number and ends
    with STOP (``.``). A damaged safetensors file can open the same way (header length
    640 + 256k, say), so one whose header length fits the file and is followed by ``{`` is
    not called a pickle.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        f.seek(max(size - 1, 0))
        last = f.read(1)
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive, as torch.save writes"
    damaged_safetensors = len(head) == 9 and head[8:] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and last == b"." and not damaged_safetensors:
        return "a Python pickle"
    return None
