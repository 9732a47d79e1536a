"""Regenerate tests/fixtures/weights/: small torch.save files and the values they hold.

Maintainers only; needs PyTorch (the tests do not):

    /work/torchvenv/bin/python tools/make_weight_fixtures.py

Writes (each a few KB):
    expected.npz            the state_dict as NumPy (bfloat16 widened to float32)
    sd_zip.pth              torch.save to a buffer: zip with prefix 'archive/'
    tiny_resnet.pth         torch.save to a path: zip with prefix 'tiny_resnet/'
    sd_nobyteorder.pth      zip without the 'byteorder' record (as older torch wrote)
    sd_bigendian.pth        zip rewritten as a big-endian machine would write it
    sd_legacy.pth           _use_new_zipfile_serialization=False (torch < 1.6 format)
    checkpoint_wrapped.pth  {'state_dict': {'module.' + name: tensor}, 'epoch': 3, ...}
    reference.safetensors   the same tensors written by the `safetensors` package (optional:
                            only if it is installed next to torch; never needed by minires)
and checks, when `safetensors` is installed, that it reads what minires writes.
"""
import io
import os
import sys
import tempfile
import zipfile

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "weights")


def make_state_dict():
    """A module's real state_dict (with its _metadata) plus tensors that exercise the reader."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 3))
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 2.0)
    net[1].num_batches_tracked.fill_(7)                          # 0-d int64
    sd = net.state_dict()                                        # an OrderedDict with ._metadata
    sd["3.weight"] = sd["3.weight"].half()                       # float16
    sd["3.bias"] = sd["3.bias"].bfloat16()                       # bfloat16
    sd["f16_special"] = torch.tensor([float("inf"), -float("inf"), 65504.0, 2.0 ** -24, -0.0],
                                     dtype=torch.float16)
    sd["bf16_special"] = torch.tensor([3.0e38, -1.0e-38, 1.0 / 3.0, -0.0, float("inf")],
                                      dtype=torch.bfloat16)
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    sd["transposed"] = base.t()                                  # strides (1, 6): not contiguous
    big = torch.randn(5, 4)
    sd["row_view"] = big[2:4]                                    # storage offset 8
    sd["strided_view"] = big[1:, ::2]                            # offset 4, strides (4, 2), same storage
    sd["scalar"] = torch.tensor(3.5)                             # 0-d float32
    sd["int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["int16"] = torch.tensor([[-32768, 1], [2, 32767]], dtype=torch.int16)
    sd["int32"] = torch.tensor([-2 ** 31, 2 ** 31 - 1], dtype=torch.int32)
    sd["int64_big"] = torch.tensor([-2 ** 63, 2 ** 62 + 1], dtype=torch.int64)
    sd["uint8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = nn.Parameter(torch.randn(2, 2))                # pickled via _rebuild_parameter
    return sd


def to_numpy(t):
    t = t.detach()
    return (t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy().copy()


def storage_dtypes(sd):
    """torch.save's storage keys '0', '1', ... in order of first appearance -> element dtype."""
    keys, out = {}, {}
    for t in sd.values():
        ptr = t.untyped_storage().data_ptr()
        if ptr not in keys:
            keys[ptr] = str(len(keys))
            out[keys[ptr]] = t.dtype
    return out


def rewrite_zip(src, dst, edit):
    """Copy a zip entry by entry; edit(name, data) returns the new data or None to drop it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name in zin.namelist():
            data = edit(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)


def big_endian(sd, src, dst):
    """What torch.save writes on a big-endian machine: byteorder 'big', every element swapped."""
    dtypes = storage_dtypes(sd)

    def edit(name, data):
        prefix, _, rest = name.partition("/")
        if rest == "byteorder":
            return b"big"
        if rest.startswith("data/"):
            itemsize = torch.empty(0, dtype=dtypes[rest[5:]]).element_size()
            if itemsize == 1:
                return data                                      # single bytes have no order
            return np.frombuffer(data, f"u{itemsize}").byteswap().tobytes()
        return data
    rewrite_zip(src, dst, edit)


def safetensors_interop(sd):
    """Write reference.safetensors with the real package and check it reads our files."""
    try:
        from safetensors.numpy import load_file
        from safetensors.torch import save_file
    except ImportError:
        print("safetensors not installed: reference.safetensors not refreshed")
        return
    tensors = {k: v.detach().contiguous().clone() for k, v in sd.items()}
    save_file(tensors, os.path.join(OUT, "reference.safetensors"), metadata={"format": "pt", "by": "minires"})
    sys.path.insert(0, ROOT)
    from minires.weights import write_safetensors
    arrays = {k: to_numpy(v) for k, v in sd.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "ours.safetensors")
        write_safetensors(ours, arrays, {"format": "np"})
        back = load_file(ours)
    assert set(back) == set(arrays)
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].tobytes() == a.tobytes(), k
    print("safetensors reads minires's safetensors files: ok")


def check_same(path, sd):
    loaded = torch.load(path, weights_only=True)
    loaded = loaded.get("state_dict", loaded)
    for k, v in sd.items():
        got = loaded[k] if k in loaded else loaded["module." + k]
        assert torch.equal(got, v.detach()) or (got.isnan() == v.isnan()).all(), k


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = make_state_dict()
    np.savez(os.path.join(OUT, "expected.npz"), **{k: to_numpy(v) for k, v in sd.items()})

    buf = io.BytesIO()
    torch.save(sd, buf)
    path = os.path.join(OUT, "sd_zip.pth")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    torch.save(sd, os.path.join(OUT, "tiny_resnet.pth"))
    # torch's C++ writer adds the byteorder record even with _disable_byteorder_record=True,
    # so drop it by hand to get what torch < 1.10 wrote.
    tmp = os.path.join(OUT, "tmp.pth")
    torch.save(sd, os.path.join(OUT, "sd_nobyteorder.pth"))
    os.replace(os.path.join(OUT, "sd_nobyteorder.pth"), tmp)
    rewrite_zip(tmp, os.path.join(OUT, "sd_nobyteorder.pth"),
                lambda name, data: None if name.endswith("/byteorder") else data)
    os.remove(tmp)
    big_endian(sd, path, os.path.join(OUT, "sd_bigendian.pth"))
    torch.save(sd, os.path.join(OUT, "sd_legacy.pth"), _use_new_zipfile_serialization=False)
    wrapped = {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3,
               "best_acc1": 0.5, "arch": "tiny"}
    torch.save(wrapped, os.path.join(OUT, "checkpoint_wrapped.pth"))
    safetensors_interop(sd)

    for name in sorted(os.listdir(OUT)):
        full = os.path.join(OUT, name)
        if name.endswith(".pth"):
            check_same(full, sd)                                 # torch itself agrees
        prefix = sorted(zipfile.ZipFile(full).namelist())[0].split("/")[0] \
            if zipfile.is_zipfile(full) and name.endswith(".pth") else "-"
        print(f"{name:24s} {os.path.getsize(full):7d} bytes  prefix: {prefix}")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
