import hashlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FASHION_DIR, write_idx
from prunefuse import data
from prunefuse.data.batching import Normalizer, TensorBatches, random_crop, random_flip, shuffle_tiles
from prunefuse.data.idx import IMAGE_MAGIC
from prunefuse.errors import UserError


def test_idx_gz_and_raw_read_the_same(idx_dir, tmp_path_factory):
    gz = data.load("mnist", "train", idx_dir)
    raw_dir = tmp_path_factory.mktemp("raw")
    for f in idx_dir.iterdir():
        import gzip
        (raw_dir / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    raw = data.load("mnist", "train", raw_dir)
    assert gz.images.shape == (20, 1, 28, 28) and gz.images.dtype == torch.uint8
    assert torch.equal(gz.images, raw.images) and torch.equal(gz.labels, raw.labels)
    assert gz.labels.tolist() == [i % 10 for i in range(20)]
    assert len(data.load("mnist", "test", idx_dir)) == 10


def test_idx_truncated_file_is_reported(idx_dir):
    f = idx_dir / "train-images-idx3-ubyte.gz"
    import gzip
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-100]))
    with pytest.raises(UserError, match="truncated"):
        data.load("mnist", "train", idx_dir)


def test_idx_wrong_magic_and_count_mismatch(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", np.zeros(10), IMAGE_MAGIC)
    with pytest.raises(UserError, match="magic"):
        data.load("mnist", "test", idx_dir)
    write_idx(idx_dir / "t10k-images-idx3-ubyte", np.zeros((7, 28, 28)), IMAGE_MAGIC)
    from prunefuse.data.idx import LABEL_MAGIC
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", np.zeros(10), LABEL_MAGIC)
    with pytest.raises(UserError, match="7 images but 10 labels"):
        data.load("mnist", "test", idx_dir)


def test_missing_fashion_mnist_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("prunefuse.data.registry.SYSTEM_DIRS", {})
    monkeypatch.setenv("PRUNEFUSE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="apt-get install -y dataset-fashion-mnist"):
        data.load("fashion-mnist", "train")


def test_unknown_dataset_and_split():
    with pytest.raises(UserError, match="unknown dataset"):
        data.load("imagenet22k")
    with pytest.raises(UserError, match="unknown split"):
        data.load("digits", "val")


def test_cifar10_batches(cifar10_dir):
    train = data.load("cifar10", "train", cifar10_dir)
    test = data.load("cifar10", "test", cifar10_dir)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 6
    assert train.classes[3] == "class3" and test.labels.tolist() == list(range(6))


def test_cifar100_batches(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f, protocol=2)
    for split, n in (("train", 5), ("test", 3)):
        with open(base / split, "wb") as f:
            pickle.dump({b"data": np.full((n, 3072), 7, np.uint8), b"fine_labels": [99] * n}, f, protocol=2)
    ds = data.load("cifar100", "test", tmp_path)
    assert ds.num_classes == 100 and ds.labels.tolist() == [99] * 3 and int(ds.images.max()) == 7


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_pickle_with_code_is_refused(cifar10_dir):
    with open(cifar10_dir / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": Exploit(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="refusing to load"):
        data.load("cifar10", "test", cifar10_dir)


def _png(path, value, mode="L", size=(10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_image_folder_with_split_and_resize(tmp_path):
    for split in ("train", "test"):
        _png(tmp_path / split / "cat" / "a.png", 10)
        _png(tmp_path / split / "dog" / "b.png", 200)
        _png(tmp_path / split / "dog" / "c.png", 100, size=(20, 20))
    ds = data.load("imagefolder", "train", tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 1, 1]
    assert ds.images.shape == (3, 1, 10, 10) and ds.ids[0].endswith("a.png")
    assert int(ds.images[1].float().mean()) == 200


def test_one_set_of_images_is_split_so_that_test_images_are_never_trained_on(tmp_path):
    for i in range(8):
        _png(tmp_path / "flat" / ("cat" if i % 2 else "dog") / f"{i}.png", 10 * i)
    np.savez(tmp_path / "d.npz", x=np.arange(16, dtype=np.uint8)[:, None, None].repeat(8, 1).repeat(8, 2),
             y=np.arange(16) % 2)
    for name, where, n in (("imagefolder", tmp_path / "flat", 8), ("npz", tmp_path / "d.npz", 16)):
        train, test = data.load(name, "train", where), data.load(name, "test", where)
        assert (len(train), len(test)) == (n * 3 // 4, n // 4)
        seen = {bytes(x.numpy()) for x in train.images}
        assert not any(bytes(x.numpy()) in seen for x in test.images)
        assert sorted(test.labels.tolist()) == [0] * (n // 8) + [1] * (n // 8)  # stratified
        assert data.load(name, "test", where).images.equal(test.images)  # fixed


def test_image_folder_with_one_split_folder_refuses_the_other(tmp_path):
    _png(tmp_path / "train" / "cat" / "a.png", 10)
    with pytest.raises(UserError, match="has train/ but no test/"):
        data.load("imagefolder", "test", tmp_path)


def test_a_class_called_train_is_a_class(tmp_path):
    for i in range(8):
        _png(tmp_path / ("train" if i % 2 else "bus") / f"{i}.png", 10 * i)
    train, test = data.load("imagefolder", "train", tmp_path), data.load("imagefolder", "test", tmp_path)
    assert train.classes == test.classes == ["bus", "train"] and (len(train), len(test)) == (6, 2)


def test_one_image_cannot_hold_out_a_test_split(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((1, 8, 8), np.uint8), y=np.zeros(1))
    with pytest.raises(UserError, match="one image"):
        data.load("npz", "test", tmp_path / "d.npz")


def test_image_folder_bad_image(tmp_path):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "x.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="not a readable image"):
        data.load("imagefolder", "train", tmp_path)


def test_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    root.mkdir()
    (root / "wnids.txt").write_text("n01\nn02\n")
    (root / "words.txt").write_text("n01\tgoldfish, Carassius\nn02\tsalamander\n")
    for w, v in (("n01", 1), ("n02", 2)):
        _png(root / "train" / w / "images" / f"{w}_0.JPEG", (v, v, v), "RGB", (64, 64))
    _png(root / "val" / "images" / "val_0.JPEG", (3, 3, 3), "RGB", (64, 64))
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t10\t10\n")
    train = data.load("tiny-imagenet", "train", tmp_path)
    test = data.load("tiny-imagenet", "test", tmp_path)
    assert train.images.shape == (2, 3, 64, 64) and train.classes == ["goldfish", "salamander"]
    assert test.labels.tolist() == [1]


def test_npz_channels_last_and_floats(tmp_path):
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    ds = data.load("npz", "train", tmp_path)
    assert ds.images.shape == (6, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.num_classes == 3
    assert abs(int(ds.images[0, 0, 0, 0]) - round(float(x[0, 0, 0, 0]) * 255)) <= 1


def test_npz_mismatched_lengths(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 8, 8), np.uint8), y=np.zeros(4))
    with pytest.raises(UserError, match="5 images but 4 labels"):
        data.load("npz", "train", tmp_path / "d.npz")


def test_digits_embedded():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert int(train.images.max()) == 255
    # the fixed split every digits result was measured on: the same order and images as ever
    assert test.labels[:12].tolist() == [2, 0, 4, 9, 4, 1, 2, 4, 6, 7, 9, 1]
    assert hashlib.sha256(test.images.numpy().tobytes()).hexdigest()[:16] == "cf4be828d59d9227"


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_fashion_mnist_official_split():
    train = data.load("fashion-mnist", "train")
    test = data.load("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and len(test) == 10000
    assert train.classes[9] == "Ankle boot"
    assert torch.bincount(train.labels).tolist() == [6000] * 10


def test_random_crop_is_a_shifted_window():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    assert torch.equal(random_crop(x, 0, None), x)
    g = torch.Generator().manual_seed(3)
    out = random_crop(x, 2, g)
    g = torch.Generator().manual_seed(3)
    oy = torch.randint(0, 5, (2,), generator=g)
    ox = torch.randint(0, 5, (2,), generator=g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, oy[i]:oy[i] + 4, ox[i]:ox[i] + 4])


def test_random_flip_flips_only_chosen_samples():
    x = torch.arange(8, dtype=torch.float32).view(2, 1, 1, 4).repeat(5, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(0))
    for a, b in zip(x, out):
        assert torch.equal(b, a) or torch.equal(b, a.flip(2))
    assert any(not torch.equal(a, b) for a, b in zip(x, out))


def test_shuffle_tiles_reorders_each_images_tiles_and_keeps_every_tile_whole():
    """A grid image's labels say which items are present: a tile cut or lost would change them."""
    tile = torch.arange(8 * 4, dtype=torch.uint8).view(8, 4, 1, 1, 1).expand(8, 4, 1, 3, 3)  # image i, tile k
    x = torch.cat([torch.cat([tile[:, 0], tile[:, 1]], 3), torch.cat([tile[:, 2], tile[:, 3]], 3)], 2)
    out = shuffle_tiles(x, 2, torch.Generator().manual_seed(0))
    corners = out[:, 0, ::3, ::3].reshape(8, 4)  # one pixel of each tile, in grid order
    for i in range(8):
        assert sorted(corners[i].tolist()) == list(range(4 * i, 4 * i + 4))  # the image's own four tiles
        for r in range(2):
            for c in range(2):
                assert (out[i, 0, 3 * r:3 * r + 3, 3 * c:3 * c + 3] == corners[i, 2 * r + c]).all()  # whole
    assert not torch.equal(out, x)
    labels = torch.arange(8)
    shuffled = TensorBatches(x, labels, Normalizer([0.0], [1 / 255]), 8, shuffle=True, tiles=2,
                             generator=torch.Generator().manual_seed(1))
    (images, y), = shuffled
    assert not torch.equal(images.round().to(torch.uint8), x[y])  # reordered, each beside its own label
    assert all(sorted(images[j, 0, ::3, ::3].flatten().round().int().tolist()) == list(range(4 * y[j], 4 * y[j] + 4))
               for j in range(8))
    (images, _), = TensorBatches(x, labels, Normalizer([0.0], [1 / 255]), 8, tiles=2)  # evaluation: as stored
    assert torch.equal(images.round().to(torch.uint8), x)


def test_only_a_grid_dataset_has_tiles_to_shuffle():
    assert data.registry.grid_side("fashion-mnist-grid") == 2
    with pytest.raises(UserError, match=r"--shuffle-tiles .* mnist images are not grids; use a grid dataset"):
        data.registry.grid_side("mnist")


def test_normalizer_and_batches_cover_every_sample_once():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).repeat(1, 1, 2, 2)
    norm = Normalizer([0.0], [1.0 / 255])
    assert torch.allclose(norm(images[:1]), torch.zeros(1, 1, 2, 2))
    batches = TensorBatches(images, torch.arange(10), Normalizer([0.0], [1.0]), 3, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
    seen = torch.cat([y for _, y in batches])
    assert len(batches) == 4 and sorted(seen.tolist()) == list(range(10))
    for x, y in batches:
        assert torch.allclose(x[:, 0, 0, 0] * 255, y.float(), atol=1e-4)


def test_download_checks_checksums_over_http(idx_dir, tmp_path, monkeypatch):
    """--download against a loopback server: good files land in the cache, a bad checksum is refused."""
    import functools
    import hashlib
    import http.server
    import threading

    from prunefuse.data import registry

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(idx_dir))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        files = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in idx_dir.iterdir()}
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setitem(registry.IDX_DOWNLOADS, "mnist", (base, files))
        monkeypatch.setenv("PRUNEFUSE_CACHE", str(tmp_path / "cache"))
        ds = data.load("mnist", "test", download=True)
        assert len(ds) == 10 and (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
        bad = dict(files, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
        monkeypatch.setitem(registry.IDX_DOWNLOADS, "mnist", (base, bad))
        with pytest.raises(UserError, match="checksum mismatch"):
            registry.download_idx("mnist", tmp_path / "other")
    finally:
        server.shutdown()
