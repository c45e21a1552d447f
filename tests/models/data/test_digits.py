"""The digit data: the fixed 8x8 split and the MNIST IDX reader on tiny files written here."""

import gzip
import struct

import numpy as np
import pytest
import torch

from models.data.digits import load_digits_split, load_mnist, one_hot, read_idx, write_idx


def test_default_split_is_fixed_scaled_and_stratified():
    a, b = load_digits_split(), load_digits_split()
    assert (len(a.y_train), len(a.y_test)) == (1347, 450)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train), "the split must not move between calls"
    assert float(a.x_train.min()) == 0.0 and float(a.x_train.max()) == 1.0, "pixels should be scaled from 0..16 to [0, 1]"
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 43, f"a stratified 25% split has 43-46 test images per digit, got {counts.tolist()}"
    assert a.x_train.dtype == torch.float32 and load_digits_split(dtype=torch.float64).x_train.dtype == torch.float64
    assert (a.height, a.width, a.n_pixels) == (8, 8, 64)


def test_split_matches_sklearn_images():
    from sklearn.datasets import load_digits

    data = load_digits_split()
    raw = load_digits().data / 16.0
    # every test image is one of sklearn's images, scaled by 1/16
    first = data.x_test[0].double().numpy()
    assert np.isclose(raw, first, atol=1e-6).all(axis=1).any()


def test_one_hot_and_its_errors():
    assert torch.equal(one_hot(torch.tensor([2, 0])), torch.tensor([[0, 0, 1.0] + [0] * 7, [1.0] + [0] * 9]))
    with pytest.raises(ValueError, match="lie in"):
        one_hot(torch.tensor([10]))
    with pytest.raises(ValueError, match="1-D"):
        one_hot(torch.zeros(2, 2, dtype=torch.long))


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def write_mnist(folder, n_train=5, n_test=3, rows=4, cols=3, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_tiny_idx_files(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    assert (data.height, data.width) == (4, 3)
    expected = arrays["train-images-idx3-ubyte"].reshape(5, 12) / 255.0
    np.testing.assert_allclose(data.x_train.numpy(), expected, rtol=1e-6)
    assert data.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert data.y_train.dtype == torch.long


def test_read_idx_other_type_codes(tmp_path):
    array = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
    (tmp_path / "a").write_bytes(idx_bytes(array, type_code=0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)


@pytest.mark.parametrize("array, type_code", [
    (np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08),
    (np.arange(-3, 3, dtype=np.int32).reshape(2, 3), 0x0C),
    (np.arange(-3, 3, dtype="<i4"), 0x0C),          # little-endian in memory: written big-endian
])
def test_write_idx_writes_the_bytes_of_the_format(tmp_path, array, type_code):
    write_idx(tmp_path / "a", array)
    assert (tmp_path / "a").read_bytes() == idx_bytes(array, type_code=type_code)
    write_idx(tmp_path / "a.gz", array)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == idx_bytes(array, type_code=type_code)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize("array", [np.zeros(3, dtype=np.int64), np.array(5, dtype=np.uint8), np.zeros(2, dtype=bool)])
def test_write_idx_refuses_what_the_format_cannot_hold(tmp_path, array):
    with pytest.raises(ValueError, match="IDX stores"):
        write_idx(tmp_path / "a", array)


def test_truncated_and_wrong_files_give_clear_errors(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    good = path.read_bytes()
    path.write_bytes(good[:-7])
    with pytest.raises(ValueError, match="truncated"):
        load_mnist(tmp_path)
    path.write_bytes(good[:10])  # cut inside the header
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    path.write_bytes(good + b"\x00")
    with pytest.raises(ValueError, match="corrupt"):
        read_idx(path)
    path.write_bytes(b"<html>not mnist</html>")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match="type code"):
        read_idx(path)
    path.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


def test_mismatched_and_missing_files(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(ValueError, match="do not belong together"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
