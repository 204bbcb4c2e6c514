"""Image datasets the user supplies as files: CIFAR-10 as a NumPy ``.npz`` archive.

Contract (room ``kamoe/data``): ``load_cifar10(path, ...)`` returns a ``Dataset`` of kind
"image" with X of shape (n, 3, 32, 32), pixel values 0..255 scaled to [0, 1] (float32, to keep
the 50,000 training images at 0.6 GB), and integer labels 0..9. The archive is read with
``numpy.load(path, allow_pickle=False)``: nothing in it is ever unpickled. It must hold four
arrays, ``x_train``/``x_test`` (uint8 images, (n, 32, 32, 3) as Keras and the CIFAR pickles
reshaped give them, or channels first (n, 3, 32, 32)) and ``y_train``/``y_test`` (integer
labels 0..9, shape (n,) or (n, 1)). Nothing is downloaded. Every refusal is a ``DataError``
naming the problem and how to write a usable archive.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from kamoe.data.dataset import Affine, DataError, Dataset

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
CIFAR10_KEYS = ("x_train", "y_train", "x_test", "y_test")
_HOW = ("write one with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...) "
        "from uint8 images (n, 32, 32, 3) and integer labels 0..9")


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"cifar10: no file at {path}; {_HOW}.")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise DataError(f"cifar10: {path} is not a NumPy .npz archive (the CIFAR-10 python "
                        f"pickles are not read: load them yourself, then {_HOW}).")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DataError(f"cifar10: {path} holds pickled Python objects, which are never "
                            f"loaded; {_HOW}.") from None
        raise DataError(f"cifar10: {path} is not a NumPy .npz archive ({err}); {_HOW}.") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"cifar10: {path} is not a readable NumPy .npz archive "
                        f"({type(err).__name__}); {_HOW}.") from None
    if isinstance(archive, np.ndarray):
        raise DataError(f"cifar10: {path} is a single array (.npy), not an archive of the "
                        f"four arrays {', '.join(CIFAR10_KEYS)}; {_HOW}.")
    with archive:
        missing = [k for k in CIFAR10_KEYS if k not in archive.files]
        if missing:
            found = ", ".join(archive.files) or "nothing"
            raise DataError(f"cifar10: {path} lacks {', '.join(missing)} (it holds {found}); "
                            f"{_HOW}.")
        try:
            return {k: archive[k] for k in CIFAR10_KEYS}
        except ValueError:  # an object array inside a well-formed archive
            raise DataError(f"cifar10: {path} holds pickled Python objects, which are never "
                            f"loaded; {_HOW}.") from None


def _images(name: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        raise DataError(f"cifar10: {name} has dtype {x.dtype}; CIFAR-10 images must be uint8 "
                        "pixel values 0..255 (convert with .astype(numpy.uint8)).")
    if x.ndim == 4 and x.shape[1:] == (32, 32, 3):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1:] == (3, 32, 32):
        return x
    raise DataError(f"cifar10: {name} has shape {x.shape}; expected (n, 32, 32, 3) or "
                    "(n, 3, 32, 32).")


def _labels(name: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"cifar10: {name} must be integer class labels of shape (n,) or "
                        f"(n, 1); got {y.dtype} {y.shape}.")
    if len(y) != n:
        raise DataError(f"cifar10: {name} has {len(y)} labels for {n} images; they must match.")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"cifar10: {name} holds labels {int(y.min())}..{int(y.max())}; CIFAR-10 "
                        "labels are 0..9.")
    return y.astype(np.int64)


def _subset(n: int, limit: Any, what: str, rng: np.random.Generator) -> np.ndarray:
    if limit is None:
        return np.arange(n)
    limit = int(limit)
    if limit < 1:
        raise DataError(f"cifar10: {what}={limit} must be a positive number of images.")
    return np.sort(rng.permutation(n)[:limit]) if limit < n else np.arange(n)


def load_cifar10(path: str | Path, *, seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None) -> Dataset:
    """CIFAR-10 from the user's .npz archive; ``n_train``/``n_test`` keep a seeded subset."""
    arrays = _read_archive(Path(path).expanduser())
    x_tr, x_te = _images("x_train", arrays["x_train"]), _images("x_test", arrays["x_test"])
    y_tr = _labels("y_train", arrays["y_train"], len(x_tr))
    y_te = _labels("y_test", arrays["y_test"], len(x_te))
    if len(x_tr) < 2 or len(x_te) < 1:
        raise DataError("cifar10: the archive needs at least 2 training and 1 test image.")
    rng_tr, rng_te = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    tr, te = _subset(len(x_tr), n_train, "n_train", rng_tr), _subset(len(x_te), n_test,
                                                                     "n_test", rng_te)
    x_scaling = Affine(np.zeros(32), np.full(32, 255.0))
    return Dataset(
        name="cifar10", task="classification", kind="image",
        X_train=(x_tr[tr] / np.float32(255.0)).astype(np.float32), y_train=y_tr[tr],
        X_test=(x_te[te] / np.float32(255.0)).astype(np.float32), y_test=y_te[te],
        feature_names=[f"px_{c}_{r}_{k}" for c in "rgb" for r in range(32) for k in range(32)],
        target_names=["class"], x_scaling=x_scaling, class_names=list(CIFAR10_CLASSES),
        description="CIFAR-10 32x32 colour images from a user archive (pixel values 0..255 -> "
                    "0..1, channels first).",
        meta={"path": str(path), "n_train_archive": int(len(x_tr)),
              "n_test_archive": int(len(x_te))},
    )
