"""Handwritten digits: scikit-learn's bundled 8x8 set by default, real MNIST from IDX files.

    from models.data.digits import load_digits_split, one_hot

    data = load_digits_split()                  # 1347 train / 450 test, pixels in [0, 1]
    data.x_train.shape, data.y_train[:5]        # (torch.Size([1347, 64]), tensor([...]))
    one_hot(data.y_train).shape                 # torch.Size([1347, 10])

The 8x8 digits (UCI "optdigits", 1797 images, 16 grey levels) ship inside scikit-learn,
so nothing is downloaded. They are the series' 28x28 MNIST at lower resolution: the
3Blue1Brown network 784-16-16-10 becomes 64-16-16-10. The split is fixed (stratified,
``split_seed=0``), so every analysis and test sees the same test set.

For real MNIST, point :func:`load_mnist` at a folder holding the four IDX files from
http://yann.lecun.com/exdb/mnist/ (optionally gzipped); malformed or truncated files
raise a ``ValueError`` that says which file and what is wrong.
"""

import gzip
from dataclasses import dataclass
from pathlib import Path

import einops
import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

N_CLASSES = 10

# IDX header (LeCun et al., MNIST page): two zero bytes, a type code, the number of
# dimensions, then one big-endian uint32 per dimension. MNIST uses type 0x08 (uint8).
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DigitSplit:
    """Images flattened to pixel vectors in [0, 1] and integer labels, train and test."""

    x_train: Float[Tensor, "batch pixel"]
    y_train: Int[Tensor, " batch"]
    x_test: Float[Tensor, "batch pixel"]
    y_test: Int[Tensor, " batch"]
    height: int
    width: int
    name: str

    @property
    def n_pixels(self) -> int:
        return self.height * self.width


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 1,797 digits as [batch 8 8] pixels in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images / 16.0, digits.target  # 16 grey levels -> [0, 1], like MNIST's /255


def digit_images() -> tuple[Float[Tensor, "batch channel height width"], Int[Tensor, "batch"]]:
    """All 1,797 digits as images [batch 1 8 8] in [0, 1] with labels (for image models).

    >>> images, labels = digit_images()
    >>> images.shape, int(labels.max())
    (torch.Size([1797, 1, 8, 8]), 9)
    """
    images, target = _sklearn_digits()
    images = torch.tensor(images, dtype=torch.float32)
    return einops.rearrange(images, "batch height width -> batch 1 height width"), torch.tensor(target)


def load_digits_split(
    test_fraction: float = 0.25, split_seed: int = 0, dtype: torch.dtype = torch.float32
) -> DigitSplit:
    """scikit-learn's 8x8 digits, scaled to [0, 1], with a fixed stratified split.

    >>> data = load_digits_split()
    >>> (len(data.y_train), len(data.y_test), float(data.x_train.max()))
    (1347, 450, 1.0)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    from sklearn.model_selection import train_test_split

    images, target = _sklearn_digits()
    x = einops.rearrange(images, "batch height width -> batch (height width)")
    x_train, x_test, y_train, y_test = train_test_split(
        x, target, test_size=test_fraction, random_state=split_seed, stratify=target
    )
    return DigitSplit(
        torch.as_tensor(x_train, dtype=dtype), torch.as_tensor(y_train, dtype=torch.long),
        torch.as_tensor(x_test, dtype=dtype), torch.as_tensor(y_test, dtype=torch.long),
        height=8, width=8, name="sklearn-digits-8x8",
    )


def one_hot(labels: Int[Tensor, " batch"], n_classes: int = N_CLASSES, dtype: torch.dtype = torch.float32
            ) -> Float[Tensor, "batch n_classes"]:
    """Nielsen's ``vectorized_result`` for a whole batch: label ``j`` -> unit vector ``e_j``."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}); got range [{int(labels.min())}, {int(labels.max())}]")
    return torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as one IDX file (gzipped when ``path`` ends in ``.gz``), the format :func:`read_idx`
    and MNIST use: a subset of MNIST, or digits of your own, for :func:`load_mnist`."""
    array = np.asarray(array)
    codes = {np.dtype(dtype).newbyteorder(">") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype): code
             for code, dtype in _IDX_TYPES.items()}
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in codes or array.ndim == 0:
        raise ValueError(f"IDX stores arrays of at least one dimension of uint8, int8, int16, int32, float32 or "
                         f"float64; got dtype {array.dtype} and shape {array.shape}")
    header = bytes([0, 0, codes[big_endian], array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(big_endian).tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file (gzipped or not), checked against its header.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte"
    >>> write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: gzip stream is damaged ({error}); download the file again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (it should start with two zero bytes, a type code and "
                         f"the number of dimensions); check that this is an MNIST file and not, e.g., an HTML page")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02x}; expected one of "
                         f"{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: IDX header claims {ndim} dimensions but the file is only {len(raw)} bytes; "
                         f"the file is truncated, download it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} data bytes) but only {found} bytes "
                         f"follow; the file is truncated, download it again")
    if found > expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} data bytes) but {found} bytes follow; "
                         f"the file is corrupt or not the file its name suggests")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    # Distributions name the files either with a dash or a dot before "idx".
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: missing MNIST file {stem}[.gz]; the folder must hold "
                            f"{', '.join(MNIST_FILES.values())} (gzipped or not)")


def load_mnist(folder: str | Path, dtype: torch.dtype = torch.float32) -> DigitSplit:
    """Real MNIST from the four IDX files in ``folder``, pixels scaled to [0, 1].

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())      # real MNIST: the folder of the four downloaded files
    >>> for split, n in (("train", 5), ("t10k", 3)):   # here 5 + 3 blank 28x28 images, for the example
    ...     write_idx(folder / f"{split}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), dtype=np.uint8))
    ...     write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    >>> data = load_mnist(folder)
    >>> data.x_train.shape, data.y_test.tolist()
    (torch.Size([5, 784]), [0, 1, 2])
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist; pass the folder holding the IDX files")
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3:
            raise ValueError(f"{folder}: {split} images must be a 3-D IDX array (count, rows, cols), "
                             f"got shape {images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"{folder}: {split} labels must be a 1-D IDX array, got shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{folder}: {len(images)} {split} images but {len(labels)} labels; "
                             f"the image and label files do not belong together")
        if len(labels) and int(labels.max()) >= N_CLASSES:
            raise ValueError(f"{folder}: {split} labels go up to {int(labels.max())}; digit labels are 0-9")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(f"{folder}: train images are {arrays['train_images'].shape[1:]} but test images are "
                         f"{arrays['test_images'].shape[1:]}")
    height, width = arrays["train_images"].shape[1:]

    def pixels(images: np.ndarray) -> Tensor:
        flat = einops.rearrange(images, "batch height width -> batch (height width)")
        return torch.as_tensor(flat / 255.0, dtype=dtype)

    def targets(labels: np.ndarray) -> Tensor:
        return torch.as_tensor(labels.astype(np.int64))

    return DigitSplit(
        pixels(arrays["train_images"]), targets(arrays["train_labels"]),
        pixels(arrays["test_images"]), targets(arrays["test_labels"]),
        height=height, width=width, name=f"mnist-{height}x{width}",
    )
