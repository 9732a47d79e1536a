"""Tests for minires.data: data sets, downloads (served from 127.0.0.1 only), transforms, batching."""
import gzip
import http.server
import io
import os
import pickle
import sys
import tarfile
import threading

import numpy as np
import pytest

from minires.backend import to_device, to_numpy
from minires.data import (DATASETS, ArrayDataset, ChecksumError, CropFlip, DataError, DataNotice, batches,
                          channel_mean_std, default_root, download_url, extract_tar, load_dataset,
                          load_mnist, md5sum, normalize, random_crop, random_hflip, read_batch, read_idx,
                          stratified_split, to_float32, write_idx)
from minires.data import cifar, download as dl_module


# ---------------------------------------------------------------- a local HTTP server
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _TruncatingHandler(_QuietHandler):
    """Announces the whole file's length, sends half of it, then hangs up."""

    def do_GET(self):
        with open(os.path.join(self.directory, self.path.lstrip("/")), "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve():
    """serve(folder, handler) -> base URL of a server on 127.0.0.1 (free port, own thread), stopped after."""
    servers = []

    def start(directory, handler=_QuietHandler):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(directory), **k))
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"
    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


# ---------------------------------------------------------------- a tiny CIFAR-10 archive
NAMES = [f"class{k}".encode() for k in range(10)]


def make_cifar(folder, per_batch=3, seed=0):
    """Write a real-format CIFAR-10 archive with `per_batch` images per batch; return (path, batches)."""
    rng = np.random.default_rng(seed)
    made = {}
    tar_path = folder / cifar.ARCHIVE_NAME
    with tarfile.open(tar_path, "w:gz") as tar:
        def add(name, obj):
            raw = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"{cifar.FOLDER_NAME}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for name in cifar.TRAIN_BATCHES + cifar.TEST_BATCHES:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch).tolist()
            add(name, {b"batch_label": name.encode(), b"data": data, b"labels": labels})
            made[name] = (data, labels)
        add(cifar.META_FILE, {b"label_names": NAMES, b"num_vis": 3072})
    return tar_path, made


def test_cifar_download_and_read_back(tmp_path, serve, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    archive, made = make_cifar(src)
    base = serve(src)
    monkeypatch.setattr(cifar, "CIFAR10_URL", f"{base}/{cifar.ARCHIVE_NAME}")
    monkeypatch.setattr(cifar, "CIFAR10_MD5", md5sum(archive))
    root = tmp_path / "data"
    with pytest.warns(DataNotice, match="none of its files is one of the published CIFAR-10's"):  # made here
        train, test = load_dataset("cifar10", root=root)
    assert (root / cifar.ARCHIVE_NAME).read_bytes() == archive.read_bytes()
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes == tuple(n.decode() for n in NAMES)
    data, labels = made["data_batch_2"]
    # Channel-planar rows: byte c*1024 + h*32 + w of a row is channel c, row h, column w.
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 30), (2, 0, 31)]:
        assert train.images[3 + 1, c, h, w] == data[1, c * 1024 + h * 32 + w]
    assert train.labels[3:6].tolist() == labels
    assert np.array_equal(test.images.reshape(3, -1), made["test_batch"][0])
    mean, std = channel_mean_std(train.images)
    assert np.allclose(train.mean, mean) and np.allclose(test.std, std)
    assert isinstance(train.augment, CropFlip) and test.augment is None
    # Second time: read from the extracted folder, no network needed.
    with pytest.warns(DataNotice, match="Reading it as your own data set"):
        again, _ = load_dataset("cifar10", root=root, download=False)
    assert np.array_equal(again.images, train.images)


def test_cifar_from_existing_archive_and_missing(tmp_path, monkeypatch):
    archive, made = make_cifar(tmp_path)
    monkeypatch.setattr(cifar, "CIFAR10_MD5", md5sum(archive))
    with pytest.warns(DataNotice, match="Reading it as your own data set"):
        train, _ = cifar.load_cifar10(root=tmp_path, download=False)
    assert np.array_equal(train.images[:3].reshape(3, -1), made["data_batch_1"][0])
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path / "empty", download=False)


def test_checksum_failure_leaves_no_file(tmp_path, serve):
    (tmp_path / "src").mkdir()
    archive, _ = make_cifar(tmp_path / "src")
    base = serve(tmp_path / "src")
    out = tmp_path / "out"
    with pytest.raises(ChecksumError, match=r"expected MD5 0{32}, got " + md5sum(archive)):
        cifar.load_cifar10(root=out, url=f"{base}/{cifar.ARCHIVE_NAME}", md5="0" * 32, progress=False)
    assert os.listdir(out) == []


def test_truncated_download_leaves_no_file(tmp_path, serve):
    (tmp_path / "src").mkdir()
    archive, _ = make_cifar(tmp_path / "src")
    base = serve(tmp_path / "src", _TruncatingHandler)
    target = tmp_path / "out" / "x.tar.gz"
    with pytest.raises(DataError, match="truncated|broke off"):
        download_url(f"{base}/{cifar.ARCHIVE_NAME}", target, md5=None, progress=False)
    assert os.listdir(tmp_path / "out") == []


def test_plain_progress_without_tqdm(tmp_path, serve, monkeypatch, capsys):
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    base = serve(tmp_path)
    monkeypatch.setattr(dl_module, "_tqdm", None)
    path = download_url(f"{base}/f.bin", tmp_path / "out" / "f.bin", md5=md5sum(tmp_path / "f.bin"))
    assert (tmp_path / "out" / "f.bin").read_bytes() == b"x" * 1000 and path.endswith("f.bin")
    assert "100%" in capsys.readouterr().err


def test_corrupt_and_unsafe_archives(tmp_path):
    bad = tmp_path / cifar.ARCHIVE_NAME
    bad.write_bytes(b"this is not a tar.gz file")
    with pytest.raises(DataError, match="could not extract"):
        cifar.load_cifar10(root=tmp_path, download=False, md5=md5sum(bad))
    assert not (tmp_path / cifar.FOLDER_NAME).exists()
    for name, kind in [("../evil.txt", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)]:
        evil = tmp_path / "evil.tar"
        with tarfile.open(evil, "w") as tar:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(DataError, match="unsafe entry"):
            extract_tar(evil, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists() and os.listdir(tmp_path / "dest") == []


def test_batch_unpickler_is_restricted_but_reads_old_numpy_names(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint64).astype(np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=2)
    old = tmp_path / "old_batch"  # as written by numpy 1.x: numpy.core.multiarray
    old.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, labels = read_batch(old)
    assert np.array_equal(images.reshape(2, -1), data) and labels.tolist() == [1, 2]
    evil = tmp_path / "evil_batch"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(DataError, match="refusing to load os.system"):
        read_batch(evil)
    wrong = tmp_path / "wrong_batch"
    wrong.write_bytes(pickle.dumps({b"pixels": 1}, protocol=2))
    with pytest.raises(DataError, match=r"wrong_batch is not a CIFAR-10 batch.*b'pixels'"):
        read_batch(wrong)


# ---------------------------------------------------------------- MNIST / IDX
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / f"i{suffix}", images)
    write_idx(tmp_path / f"l{suffix}", labels)
    assert np.array_equal(read_idx(tmp_path / f"i{suffix}", 2051), images)
    assert np.array_equal(read_idx(tmp_path / f"l{suffix}", 2049), labels)
    raw = (tmp_path / f"i{suffix}").read_bytes()
    raw = gzip.decompress(raw) if suffix else raw
    assert raw[:16] == bytes.fromhex("00000803 00000005 0000001c 0000001c")


def test_idx_bad_magic_and_truncation(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"labels is not an IDX images file: expected magic number 2051.*got 2049"):
        read_idx(tmp_path / "labels", 2051)
    write_idx(tmp_path / "img", np.zeros((2, 3, 3), np.uint8))
    raw = (tmp_path / "img").read_bytes()
    (tmp_path / "cut").write_bytes(raw[:-5])
    with pytest.raises(DataError, match=r"cut is truncated: header says shape \(2, 3, 3\).*18 data bytes, got 13"):
        read_idx(tmp_path / "cut", 2051)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(DataError, match="cut.gz.*truncated or corrupt"):
        read_idx(tmp_path / "cut.gz", 2051)


def _mnist_files(folder, n_train=6, n_test=4):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in [("train", n_train), ("t10k", n_test)]:
        arrays[split] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                         rng.integers(0, 10, n).astype(np.uint8))
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", arrays[split][0])
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", arrays[split][1])
    md5 = {f: md5sum(folder / f) for f in os.listdir(folder)}
    return arrays, md5


def test_mnist_download_with_mirror_fallback(tmp_path, serve):
    (tmp_path / "src").mkdir()
    arrays, md5 = _mnist_files(tmp_path / "src")
    base = serve(tmp_path / "src")
    mirrors = [f"{base}/no-such-mirror/", f"{base}/"]
    train, test = load_mnist(tmp_path / "data", name="fashion-mnist", mirrors=mirrors, md5=md5,
                             progress=False)
    assert train.images.shape == (6, 1, 28, 28) and test.images.shape == (4, 1, 28, 28)
    assert np.array_equal(train.images[:, 0], arrays["train"][0])
    assert np.array_equal(test.labels, arrays["t10k"][1]) and test.labels.dtype == np.int64
    assert train.classes[0] == "T-shirt/top" and train.augment is None
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz: expected MD5 f{32}"):
        load_mnist(tmp_path / "data", name="fashion-mnist",
                   md5=dict(md5, **{"train-images-idx3-ubyte.gz": "f" * 32}))
    with pytest.raises(FileNotFoundError, match=r"mnist.*train-images-idx3-ubyte.gz"):
        load_dataset("mnist", root=tmp_path / "data", download=False)


# ---------------------------------------------------------------- digits
def test_digits_split_is_stratified_and_fixed():
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (pip install scikit-learn)")
    train, test = load_dataset("digits")
    assert train.images.shape == (1437, 1, 8, 8) and test.images.shape == (360, 1, 8, 8)
    assert train.images.dtype == np.float32 and 0 <= train.images.min() and train.images.max() == 1
    assert train.labels.dtype == np.int64 and train.classes == tuple("0123456789")
    from sklearn.datasets import load_digits
    counts = np.bincount(load_digits().target)
    assert np.all(np.abs(test.class_counts() - counts * 0.2) <= 1)
    assert np.array_equal(train.class_counts() + test.class_counts(), counts)
    _, test_idx = stratified_split(load_digits().target)
    # Pinned: the split must be the same on every machine and every run.
    assert test_idx[:8].tolist() == [4, 13, 20, 28, 30, 31, 37, 38] and int(test_idx.sum()) == 303784
    again, _ = load_dataset("digits")
    assert np.array_equal(again.images, train.images)
    mean, std = channel_mean_std(train.images)
    assert np.allclose(train.mean, mean) and np.allclose(test.std, std) and train.augment is None


def test_stratified_split_by_hand_and_errors():
    labels = np.repeat([0, 1, 2], [10, 20, 7])
    tr, te = stratified_split(labels, test_fraction=0.3, seed=5)
    assert len(te) == 12 and np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(37))
    # ceil(37 * 0.3) = 12 test images; shares 12 * (10, 20, 7) / 37 = (3.24, 6.49, 2.27):
    # floors (3, 6, 2) make 11, the one left over goes to the largest remainder (class 1).
    assert np.bincount(labels[te]).tolist() == [3, 7, 2]
    assert np.array_equal(te, stratified_split(labels, 0.3, seed=5)[1])
    assert not np.array_equal(te, stratified_split(labels, 0.3, seed=6)[1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(labels, test_fraction=1.5)


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn .*pip install \"\.\[data\]\""):
        load_dataset("digits")


def test_load_dataset_names_and_root(monkeypatch, tmp_path):
    assert DATASETS == ("digits", "cifar10", "mnist", "fashion-mnist")
    with pytest.raises(ValueError, match="valid names are: digits, cifar10, mnist, fashion-mnist"):
        load_dataset("imagenet")
    monkeypatch.setenv("MINIRES_DATA", str(tmp_path))
    assert default_root() == str(tmp_path)
    monkeypatch.delenv("MINIRES_DATA")
    assert default_root().endswith(os.path.join(".cache", "minires"))


def test_array_dataset_rejects_bad_input():
    x = np.zeros((4, 1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got shape \(4, 2, 2\)"):
        ArrayDataset(x[:, 0], np.zeros(4, int), "ab", [0], [1])
    with pytest.raises(ValueError, match="uint8 .* or float32 .*got dtype float64"):
        ArrayDataset(x.astype(np.float64), np.zeros(4, int), "ab", [0], [1])
    with pytest.raises(ValueError, match=r"shape \(N,\) = \(4,\).*got shape \(3,\)"):
        ArrayDataset(x, np.zeros(3, int), "ab", [0], [1])
    with pytest.raises(ValueError, match="labels must lie in 0..1 for 2 classes.*to 2"):
        ArrayDataset(x, [0, 1, 2, 0], "ab", [0], [1])
    with pytest.raises(ValueError, match=r"one value per channel, shape \(1,\)"):
        ArrayDataset(x, np.zeros(4, int), "ab", [0, 0], [1, 1])


# ---------------------------------------------------------------- transforms
def _on(device, a):   # `device` is conftest's fixture: [numpy], [strict] or [cupy]
    return to_device(a, device)


def test_to_float32_and_normalize(device):
    u = _on(device, np.array([0, 51, 255], np.uint8).reshape(1, 1, 1, 3))
    f = to_numpy(to_float32(u))
    assert f.dtype == np.float32 and np.allclose(f.ravel(), [0.0, 0.2, 1.0]) and f.max() == 1.0
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 3, 5, 5)) * [[[[1]], [[2]], [[5]]]] + [[[[0]], [[3]], [[-1]]]]).astype(np.float32)
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    z = to_numpy(normalize(_on(device, x), mean, std))
    assert z.dtype == np.float32
    assert np.allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5) and np.allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    with pytest.raises(ValueError, match=r"one value per channel, shape \(3,\)"):
        normalize(_on(device, x), [0.5], [0.2])
    with pytest.raises(ValueError, match="uint8 .* or float images, got dtype int32"):
        to_float32(_on(device, np.zeros((1, 1, 1, 1), np.int32)))


def test_random_crop_is_a_shifted_window(device):
    x = np.random.default_rng(0).random((6, 2, 5, 5)).astype(np.float32)
    out = to_numpy(random_crop(_on(device, x), 5, padding=2, rng=3))
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))  # zeros around
    for i in range(6):  # each output is one of the 5x5 windows of its own padded image
        assert any(np.array_equal(out[i], padded[i, :, t:t + 5, l:l + 5]) for t in range(5) for l in range(5))
    assert np.array_equal(out, to_numpy(random_crop(_on(device, x), 5, padding=2, rng=3)))
    assert random_crop(_on(device, x), (3, 4), rng=0).shape == (6, 2, 3, 4)
    with pytest.raises(ValueError, match="cannot cut a 9x9 window from 5x5 images padded by 1"):
        random_crop(_on(device, x), 9, padding=1)


def test_random_hflip(device):
    x = np.random.default_rng(0).random((16, 1, 3, 4)).astype(np.float32)
    once = to_numpy(random_hflip(_on(device, x), rng=7))
    twice = to_numpy(random_hflip(_on(device, once), rng=7))  # same seed: same coins
    assert np.array_equal(twice, x)
    flipped = [np.array_equal(once[i], x[i, :, :, ::-1]) for i in range(16)]
    kept = [np.array_equal(once[i], x[i]) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 16
    assert np.array_equal(to_numpy(random_hflip(_on(device, x), rng=0, p=1.0)), x[..., ::-1])


# ---------------------------------------------------------------- batching
def _indexed_dataset(N=23):
    """Images whose pixels hold their own index, so a batch says which images it holds."""
    images = np.broadcast_to(np.arange(N, dtype=np.uint8)[:, None, None, None], (N, 1, 2, 2)).copy()
    return ArrayDataset(images, np.arange(N) % 3, "abc", [0.5], [0.25])


def _ids(x):
    return np.rint(to_numpy(x)[:, 0, 0, 0] * 255).astype(int)


def test_batches_cover_every_sample_once_per_epoch(device):
    data = _indexed_dataset()
    loader = batches(data, 5, rng=0, device=device, normalize=False)
    assert len(loader) == 5 and len(batches(data, 5, drop_last=True)) == 4
    epochs = []
    for _ in range(2):
        seen = [_ids(x) for x, y in loader]
        assert [len(s) for s in seen] == [5, 5, 5, 5, 3]
        epochs.append(np.concatenate(seen))
        assert np.array_equal(np.sort(epochs[-1]), np.arange(23))
    assert not np.array_equal(epochs[0], epochs[1])  # a fresh order each epoch
    x, y = next(iter(batches(data, 23, shuffle=False, device=device)))
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (23, 1, 2, 2)
    assert np.allclose(to_numpy(x)[:, 0, 0, 0], (np.arange(23) / 255 - 0.5) / 0.25, atol=1e-6)
    assert np.array_equal(to_numpy(y), np.arange(23) % 3)


def test_batches_are_deterministic_for_a_seed():
    data = ArrayDataset(np.random.default_rng(0).integers(0, 256, (20, 3, 8, 8), dtype=np.uint8),
                        np.arange(20) % 10, "0123456789", [0.5] * 3, [0.2] * 3)
    aug = CropFlip(8, padding=2)

    def run(seed):
        return [(x, y) for x, y in batches(data, 6, rng=seed, augment=aug)]
    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not np.array_equal(a[0][0], c[0][0])
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        batches(data, 0)
    with pytest.raises(ValueError, match="device must be one of"):
        batches(data, 4, device="tpu")


def test_hold_out_is_stratified_seeded_and_refuses_to_empty_a_class():
    from minires.data import ArrayDataset, hold_out
    labels = np.repeat([0, 1, 2], [40, 20, 10])
    images = np.arange(70, dtype=np.float32).reshape(70, 1, 1, 1) / 70
    data = ArrayDataset(images, labels, ("a", "b", "c"), [0.5], [0.25], name="toy", split="train")
    train, val = hold_out(data, 0.1, seed=7)
    assert val.class_counts().tolist() == [4, 2, 1] and train.class_counts().tolist() == [36, 18, 9]
    assert sorted(train.origin.tolist() + val.origin.tolist()) == list(range(70))      # each image once
    assert np.array_equal(images[val.origin], val.images) and val.split == "validation" and val.augment is None
    assert np.array_equal(hold_out(data, 0.1, seed=7)[1].origin, val.origin)
    assert not np.array_equal(hold_out(data, 0.1, seed=8)[1].origin, val.origin)
    lonely = ArrayDataset(images[:41], labels[:41], ("a", "b", "c"), [0.5], [0.25], name="toy")
    with pytest.raises(ValueError, match=r"the validation fraction 0.5 would leave no training image of class b "
                                         r"\(toy has 41 training images\); hold out less \(--val-fraction\)"):
        hold_out(lonely, 0.5, seed=0)
