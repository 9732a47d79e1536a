"""Clear errors for data files that lie, and for a disk that fills up while extracting."""
import errno
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest

from minires.data import DataError, extract_tar, read_batch, read_idx


def write_batch(path, labels, data=None):
    data = np.zeros((len(labels), 3072), np.uint8) if data is None else data
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))
    return path


@pytest.mark.parametrize("labels, match", [
    (["3", "1", "4"], r"list of integers 0..9, got list holding str '3'"),
    ([3.0, 1.0, 4.5], r"list of integers 0..9, got list holding float 3.0"),        # never truncated
    (np.array([3.0, 1.0, 4.0]), r"integer labels 0..9, got an array of dtype float64"),
    (np.array(["a", "b", "c"]), r"integer labels 0..9, got an array of dtype <U1"),
    ([True, False, True], r"got list holding bool True"),
    ("012", r"got str holding str '012'"),
])
def test_cifar_labels_must_be_integers(tmp_path, labels, match):
    with pytest.raises(DataError, match=match):
        read_batch(write_batch(tmp_path / "data_batch_1", labels))


def test_cifar_integer_labels_still_load(tmp_path):
    images, labels = read_batch(write_batch(tmp_path / "b", [3, 1, 4]))
    assert labels.dtype == np.int64 and labels.tolist() == [3, 1, 4] and images.shape == (3, 3, 32, 32)
    images, labels = read_batch(write_batch(tmp_path / "c", np.array([2, 7], np.uint8)))
    assert labels.tolist() == [2, 7]


def test_idx_negative_dimensions_are_a_clear_error(tmp_path):
    (tmp_path / "neg").write_bytes(struct.pack(">i3i", 0x0803, 2, -3, 3) + bytes(18))
    with pytest.raises(DataError, match=r"neg is corrupt: its header gives the dimensions \(2, -3, 3\)"):
        read_idx(tmp_path / "neg", 2051)
    (tmp_path / "huge").write_bytes(struct.pack(">i3i", 0x0803, 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1))
    with pytest.raises(DataError, match="huge is truncated"):              # no int64 overflow either
        read_idx(tmp_path / "huge", 2051)


def small_tar(path):
    with tarfile.open(path, "w:gz") as tar:
        raw = bytes(100_000)
        info = tarfile.TarInfo("folder/file.bin")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return path


def test_a_full_disk_during_extraction_is_reported_as_such(tmp_path, monkeypatch):
    archive = small_tar(tmp_path / "a.tar.gz")
    real = tarfile.copyfileobj

    class FullDisk:                      # the file being written: its write fails as on a full disk
        def __init__(self, target):
            self.target = target

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile, "copyfileobj", lambda src, dst, *a, **k: real(src, FullDisk(dst), *a, **k))
    with pytest.raises(DataError, match="the disk is full .No space left on device.; free some space") as e:
        extract_tar(archive, tmp_path / "out")
    assert "corrupt" not in str(e.value)


def test_a_corrupt_archive_is_still_reported_as_corrupt(tmp_path):
    raw = small_tar(tmp_path / "a.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="probably corrupt or truncated"):
        extract_tar(tmp_path / "cut.tar.gz", tmp_path / "out")
