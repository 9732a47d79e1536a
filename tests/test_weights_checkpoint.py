"""minires.weights.checkpoint: npz checkpoints with JSON metadata, written atomically."""
import numpy as np
import pytest

from minires.weights import (WeightsError, atomic_write, load_checkpoint, load_weights, save_checkpoint,
                             save_weights)


def arrays():
    return {"conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
            "bn1.num_batches_tracked": np.array(7, dtype=np.int64),
            "file": np.ones(2, np.float16), "allow_pickle": np.zeros(1, bool)}   # np.savez's own names


def test_round_trip(tmp_path):
    meta = {"epoch": 3, "lr": 0.1, "history": [1.5, 0.75], "arch": "resnet20", "nested": {"a": None}}
    save_checkpoint(tmp_path / "ck.npz", arrays(), meta)
    got, got_meta = load_checkpoint(tmp_path / "ck.npz")
    assert got_meta == meta and list(got) == list(arrays())
    for k, a in arrays().items():
        assert got[k].dtype == a.dtype and np.array_equal(got[k], a)


def test_plain_numpy_reads_it_without_pickle(tmp_path):
    save_checkpoint(tmp_path / "ck.npz", arrays(), {"epoch": 1})
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as npz:
        assert set(npz.files) == set(arrays()) | {"__metadata__"}
        assert npz["__metadata__"].dtype == np.uint8
    sd = load_weights(tmp_path / "ck.npz")                          # the metadata is not a weight
    assert list(sd) == list(arrays())


def test_save_weights_npz_and_plain_savez_files(tmp_path):
    save_weights(tmp_path / "w.npz", {"a": np.ones(3)}, {"note": "hi"})
    assert load_checkpoint(tmp_path / "w.npz")[1] == {"note": "hi"}
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    assert load_checkpoint(tmp_path / "plain.npz")[1] == {}


def test_failure_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.ones(3)}, {"epoch": 1})
    before = path.read_bytes()
    calls = []

    def broken_write_array(fp, array, **kwargs):         # the disk fills up after one array
        calls.append(1)
        if len(calls) > 1:
            raise OSError("No space left on device")
        return real(fp, array, **kwargs)
    real = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", broken_write_array)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, arrays(), {"epoch": 2})
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.npz", arrays(), {"epoch": 2})
    assert path.read_bytes() == before                     # the old checkpoint, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]   # no partial, no temp file
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == {"epoch": 1}


def test_bad_metadata_or_arrays_write_nothing(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "a.npz", {"w": np.ones(1)}, {"when": object()})
    with pytest.raises(TypeError, match="dtype object"):
        save_checkpoint(tmp_path / "b.npz", {"w": np.array([None])})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.npz", {"__metadata__": np.ones(1)})
    with pytest.raises(TypeError, match="must be a dict"):
        save_checkpoint(tmp_path / "d.npz", {"w": np.ones(1)}, ["epoch", 1])
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoints_raise(tmp_path):
    save_checkpoint(tmp_path / "ck.npz", arrays(), {"epoch": 1})
    raw = (tmp_path / "ck.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsError):
        load_checkpoint(tmp_path / "cut.npz")
    np.savez(tmp_path / "badmeta.npz", __metadata__=np.frombuffer(b"{oops", np.uint8))
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_checkpoint(tmp_path / "badmeta.npz")
    np.savez(tmp_path / "obj.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError):
        load_checkpoint(tmp_path / "obj.npz")


def test_atomic_write_cleans_up(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "x.bin") as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(tmp_path / "x.bin") as f:
        f.write(b"whole")
    assert (tmp_path / "x.bin").read_bytes() == b"whole"


def test_a_text_file_is_not_a_minires_checkpoint_and_no_pickle_advice(tmp_path):
    (tmp_path / "notes.npz").write_text("epoch 3: loss 0.5\n")
    with pytest.raises(WeightsError, match="not a minires checkpoint.*not a zip signature") as e:
        load_checkpoint(tmp_path / "notes.npz")
    assert "allow_pickle" not in str(e.value) and "looks like text" in str(e.value)


def test_npz_bomb_and_odd_dtypes(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array(m, np.zeros(1 << 22, np.float64))       # 32 MiB of zeros, ~32 KB
    with pytest.raises(WeightsError, match="expands that much"):
        load_checkpoint(tmp_path / "bomb.npz")
    np.savez(tmp_path / "u.npz", w=np.array(["a"]))
    with pytest.raises(WeightsError, match="not a number type"):
        load_checkpoint(tmp_path / "u.npz")
    np.savez(tmp_path / "ok.npz", be=np.arange(3, dtype=">i2"), f=np.asfortranarray(np.ones((2, 3))))
    got = load_checkpoint(tmp_path / "ok.npz")[0]
    assert got["be"].dtype == np.int16 and got["be"].dtype.isnative and got["f"].flags.c_contiguous


def test_killed_writes_leave_no_litter(tmp_path):
    """kill -9 while writing leaves a temporary file; the next write of that file removes it."""
    import signal
    import subprocess
    import sys
    path = tmp_path / "last.npz"
    code = ("import sys, time; from minires.weights import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n"
            "    f.write(b'x' * 100000); print('writing', flush=True); time.sleep(60)\n")
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]) == 1     # its litter
        save_checkpoint(path, arrays(), {"attempt": attempt})                             # the next write
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]                # ... cleans it up
    assert load_checkpoint(path)[1] == {"attempt": 2}


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    import os
    live = tmp_path / f".ck.npz.{os.getppid()}.abc123.tmp"       # our parent process is alive
    live.write_bytes(b"in progress")
    save_checkpoint(tmp_path / "ck.npz", arrays())
    assert live.exists()
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_from_the_device_and_load_into_it(tmp_path, device, suffix):
    """A model on the device ([strict]: the CuPy stand-in) saves its state_dict to host files
    and loads host or device state_dicts back; the values survive every trip exactly."""
    from minires.backend import device_of, to_numpy
    from minires.models import resnet20
    rng = np.random.default_rng(0)
    model = resnet20(num_classes=3, in_channels=1)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    host = {k: to_numpy(v).copy() for k, v in model.state_dict().items()}
    model.to(device)
    save_weights(tmp_path / ("w" + suffix), model.state_dict(), {"device": device})
    loaded = load_weights(tmp_path / ("w" + suffix))
    assert all(type(v) is np.ndarray for v in loaded.values())        # files hold host arrays
    other = resnet20(num_classes=3, in_channels=1).to(device)
    other.load_state_dict(loaded)                                    # host -> device
    twin = resnet20(num_classes=3, in_channels=1).to(device)
    twin.load_state_dict(other.state_dict())                         # device -> device
    for k, v in twin.state_dict().items():
        assert device_of(v) == device_of(model.state_dict()[k]) and np.array_equal(to_numpy(v), host[k]), k
