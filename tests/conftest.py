import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from prunefuse.data.idx import IMAGE_MAGIC, LABEL_MAGIC

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


@pytest.fixture
def idx_dir(tmp_path):
    """A tiny MNIST-layout folder: 20 train and 10 test images of 28x28."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), IMAGE_MAGIC)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, LABEL_MAGIC)
    return tmp_path


@pytest.fixture
def cifar10_dir(tmp_path):
    rng = np.random.default_rng(1)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    names = [f"class{i}".encode() for i in range(10)]
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f, protocol=2)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 6)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
        with open(base / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return tmp_path


@pytest.fixture(scope="session")
def fashion_subset():
    """A small real Fashion-MNIST subset: 1,200 training and 500 test images."""
    from prunefuse import data

    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
    train = data.load("fashion-mnist", "train")
    test = data.load("fashion-mnist", "test")
    g = torch.Generator().manual_seed(0)
    return (train.subset(torch.randperm(len(train), generator=g)[:1200].sort().values),
            test.subset(torch.arange(500)))
