"""Safetensors recognised by parsing the format, at every header length modulo 256.

The first 8 bytes of a safetensors file are its header length, little-endian, so the first
byte is the header length modulo 256: a reader that calls every file starting with 0x80 a
pickle refuses one valid file in 256 header lengths (one in 32 of the lengths the
safetensors library writes, which pads its headers to multiples of 8).
"""

import json
import pickle
import struct

import pytest
import safetensors.torch
import torch
from torch import nn

from models import checkpoint as ckpt

NOT_SAFETENSORS = r"is not a safetensors file \("
NAME_LENGTHS = range(1, 265)  # tensor names this long walk the library's headers through every residue
LIBRARY_RESIDUES = set(range(0, 256, 8))  # the library pads headers to multiples of 8
ALL_RESIDUES = set(range(256))  # an unpadded header can have any length
PICKLE_PROTOCOLS = [2, 3, 4, 5]


def header_length(path) -> int:
    with open(path, "rb") as f:
        return struct.unpack("<Q", f.read(8))[0]


def named_parameter_module(name: str) -> nn.Module:
    module = nn.Module()
    module.register_parameter(name, nn.Parameter(torch.arange(3.0)))
    return module


def test_models_saved_by_the_library_load_at_every_header_length_it_writes(tmp_path):
    # safetensors pads headers to multiples of 8; name lengths 1..264 walk the header
    # through every such residue modulo 256, 128 (a first byte of 0x80) among them
    residues = set()
    for k in NAME_LENGTHS:
        name = "w" * k
        folder = tmp_path / str(k)
        model = named_parameter_module(name)
        ckpt.save_model(model, folder, {"name": name})
        residues.add(header_length(folder / ckpt.WEIGHTS) % 256)
        again = ckpt.load_model(folder, lambda c: named_parameter_module(c["name"]), expected_config={"name": name})
        assert torch.equal(getattr(again, name), getattr(model, name)), k
    assert residues == LIBRARY_RESIDUES, f"residues not covered: {sorted(LIBRARY_RESIDUES - residues)}"


def unpadded_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file with no padding after its header, as the format allows."""
    header, data, offset = {"__metadata__": metadata}, b"", 0
    for name, tensor in tensors.items():
        raw = tensor.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_files_load_at_every_header_length_modulo_256(tmp_path):
    # other writers (and older safetensors versions) do not pad: every residue is valid
    model = nn.Linear(2, 3)
    tensors = {k: v.detach() for k, v in model.state_dict().items()}
    residues = set()
    for extra in range(len(ALL_RESIDUES)):
        folder = tmp_path / str(extra)
        folder.mkdir()
        raw = unpadded_safetensors(tensors, {"note": "x" * extra})
        (folder / ckpt.WEIGHTS).write_bytes(raw)
        residues.add(header_length(folder / ckpt.WEIGHTS) % 256)
        again = ckpt.load_weights(nn.Linear(2, 3), folder)
        assert torch.equal(again.weight, model.weight) and torch.equal(again.bias, model.bias), extra
        _, metadata = ckpt.load_tensors(folder / ckpt.WEIGHTS)
        assert metadata == {"note": "x" * extra}
    assert residues == ALL_RESIDUES


def valid_tensors() -> dict[str, torch.Tensor]:
    return {"W_E": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([7], dtype=torch.int64)}


def valid_length() -> int:
    """Bytes in the valid file: one truncation per length below it, eight bit flips per byte."""
    return len(safetensors.torch.save(valid_tensors()))


@pytest.fixture
def valid_file(tmp_path):
    path = tmp_path / "valid.safetensors"
    ckpt.save_tensors(valid_tensors(), path)
    assert path.stat().st_size == valid_length()
    return path


def test_every_truncation_is_refused_with_a_message(valid_file, tmp_path):
    raw = valid_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    for length in range(len(raw)):
        cut.write_bytes(raw[:length])
        with pytest.raises(ValueError, match=NOT_SAFETENSORS + ".*truncated or corrupted"):
            ckpt.load_tensors(cut)


def test_every_single_bit_flip_is_refused_or_loads(valid_file, tmp_path):
    """A flip in the data changes a value; one in the header is refused (or renames a
    tensor, or changes a dtype or shape consistently); nothing raises anything else."""
    raw = valid_file.read_bytes()
    original, _ = ckpt.load_tensors(valid_file)
    n = header_length(valid_file)
    flipped = tmp_path / "flipped.safetensors"
    refused = loaded = 0
    for index in range(len(raw)):
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[index] ^= 1 << bit
            flipped.write_bytes(bytes(damaged))
            try:
                tensors, _ = ckpt.load_tensors(flipped)
            except ValueError as e:
                assert "is not a safetensors file (" in str(e) or "readable safetensors" in str(e), str(e)
                refused += 1
                continue
            loaded += 1
            if index >= 8 + n:  # the data: same names, one value differs
                assert tensors.keys() == original.keys()
                bits = lambda t: t.numpy().tobytes()  # noqa: E731 (torch.equal calls -0.0 equal to 0.0)
                assert any(bits(tensors[k]) != bits(original[k]) for k in tensors), (index, bit)
    assert refused > 0 and loaded >= 8 * (len(raw) - 8 - n), (refused, loaded)


def test_a_damaged_file_whose_first_byte_is_0x80_is_not_called_a_pickle(tmp_path):
    model = named_parameter_module("w")
    tensors = {"w": model.w.detach()}
    for extra in range(600):  # find a header length of 640 + 256k: bytes 0x80, 0x02..0x05
        raw = unpadded_safetensors(tensors, {"note": "x" * extra})
        if raw[0] == 0x80 and 2 <= raw[1] <= 5:
            break
    else:
        raise AssertionError("no header length of the form 0x80, 2..5 found")
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    assert ckpt.load_tensors(path)[0]["w"].tolist() == [0.0, 1.0, 2.0]
    path.write_bytes(raw[:-1] + b".")  # still valid: one data byte changed
    ckpt.load_tensors(path)
    path.write_bytes(raw[:-2] + b".")  # truncated, ending like a pickle
    with pytest.raises(ValueError, match=NOT_SAFETENSORS + "tensor 'w' has data_offsets") as error:
        ckpt.load_tensors(path)
    assert "it is a Python pickle" not in str(error.value)


@pytest.mark.parametrize("protocol", PICKLE_PROTOCOLS)
def test_a_pickle_of_every_protocol_is_refused_as_a_pickle(tmp_path, monkeypatch, protocol):
    def unpickled(*args, **kwargs):
        raise AssertionError("nothing may be unpickled")

    monkeypatch.setattr(pickle, "loads", unpickled)
    monkeypatch.setattr(pickle, "load", unpickled)
    monkeypatch.setattr(torch, "load", unpickled)
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"w": torch.zeros(2)}, protocol=protocol))
    with pytest.raises(ValueError, match=NOT_SAFETENSORS + r"it is a Python pickle\); interp never loads pickles"):
        ckpt.load_tensors(path)


def test_a_torch_save_zip_is_refused_as_a_zip(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never be called"))
    with pytest.raises(ValueError, match=NOT_SAFETENSORS + r"it is a zip archive, as torch.save writes\)"):
        ckpt.load_tensors(path)


MALFORMED_HEADERS = [
    (b"", "only 0 bytes long"),
    (struct.pack("<Q", 2) + b"[]", "a list, not a dict"),
    (struct.pack("<Q", 3) + b"{\xff}", "not JSON"),
    (struct.pack("<Q", 9) + b"{\"a\": NaN", "not JSON"),
    (struct.pack("<Q", 10**9) + b"{}", "over the limit"),
    (struct.pack("<Q", 50) + b"{}", "runs past the end"),
    (struct.pack("<Q", 2) + b"{}" + b"\0", "cover 0 of the 1 data bytes"),
    (struct.pack("<Q", 37) + b'{"a":{"dtype":"F32","shape":[1]}}    ', "not described by dtype"),
]


@pytest.mark.parametrize("raw, problem", MALFORMED_HEADERS)
def test_malformed_headers_are_named(tmp_path, raw, problem):
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=NOT_SAFETENSORS + ".*" + problem):
        ckpt.load_tensors(path)


def test_the_library_agrees_with_the_parser_on_valid_files(valid_file):
    assert safetensors.torch.load_file(str(valid_file)).keys() == ckpt.load_tensors(valid_file)[0].keys()
