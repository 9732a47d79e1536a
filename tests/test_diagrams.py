"""minires.teach.diagrams (issue 28): every figure draws, small, from the code; the facts it states
are the models' own, checked here against the models and against naive loops."""
import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the figures need matplotlib (pip install matplotlib)")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from minires.models import resnet18, resnet20, resnet34, resnet50, resnet50_v1  # noqa: E402
from minires.teach import diagrams as d  # noqa: E402
from minires.viz import pyplot  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"
NEEDS_DIGITS = {"degradation"}
# Texts a figure draws only for some models (a legend line for a kind of shortcut the net lacks).
DRAWN_ONLY_SOMETIMES = {"resnet34": {"zero-pad"}, "resnet50": {"zero-pad"}, "resnet20": {"projection"},
                        "basic_block": {"zero-pad"}, "bottleneck_block": {"zero-pad"}}


def drawn_texts(fig):
    """Every string the figure draws (titles, labels, legends, annotations)."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def skip_without_digits(name):
    if name in NEEDS_DIGITS:
        pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")


def test_the_registry_has_every_figure_with_its_texts():
    assert len(d.FIGURES) >= 20
    assert set(d.LABELS) == set(d.FIGURES)
    for name, fn in d.FIGURES.items():
        assert fn.__doc__ and fn.__doc__.strip(), name
        params = fn.__code__.co_varnames[:fn.__code__.co_argcount]
        assert params[:2] == ("path", "labels"), f"{name}: draw functions take path=None, labels=None first"


@pytest.mark.parametrize("name", list(d.FIGURES))
def test_each_figure_draws_into_a_small_png(name, tmp_path):
    skip_without_digits(name)
    path = tmp_path / f"{name}.png"
    fig = d.FIGURES[name](path=str(path))
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert data[:8] == PNG
    assert len(data) < 200_000, f"{name}.png is {len(data):,} bytes"
    assert not [p for p in tmp_path.iterdir() if p.name != path.name], "a temporary file was left behind"


def test_without_a_path_the_figure_is_returned_open():
    fig = d.draw_im2col()
    assert isinstance(fig, Figure) and pyplot().fignum_exists(fig.number)
    pyplot().close(fig)


@pytest.mark.parametrize("name", [n for n in d.FIGURES if n not in NEEDS_DIGITS] + ["degradation"])
def test_every_text_can_be_replaced(name, tiny_degradation):
    """A translation: each label prefixed with a marker, format fields kept; the figure draws the
    marked strings, and a label the figure does not have is refused."""
    marked = {k: "§" + v for k, v in d.LABELS[name].items()}
    extra = {"result": tiny_degradation} if name == "degradation" else {}
    fig = d.FIGURES[name](labels=marked, **extra)
    texts = drawn_texts(fig)
    pyplot().close(fig)
    joined = "\n".join(texts)
    missing = {k for k, v in d.LABELS[name].items() if "§" + v.split("{")[0].split("\n")[0] not in joined}
    assert missing <= DRAWN_ONLY_SOMETIMES.get(name, set()), f"{name}: labels not drawn: {sorted(missing)}"
    unmarked_titles = [t for t in texts if t in [v for v in d.LABELS[name].values() if "{" not in v]]
    assert not unmarked_titles, f"{name} drew a default text despite the labels: {unmarked_titles}"
    with pytest.raises(ValueError, match="draws no text called"):
        d.FIGURES[name](labels={"no such text": "x"}, **extra)


@pytest.fixture(scope="module")
def tiny_degradation():
    pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")
    return d.degradation_result(depths=(8, 14), steps=4, batch_size=16)


# ----- the facts the figures state, held against the models -----

def test_resnet34_facts_and_what_the_figure_draws():
    f = d.network_facts(resnet34(), (3, 224, 224))
    assert f["blocks"] == 16 and f["dashed"] == 3
    assert [s["out_shape"] for s in f["stages"]] == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert [len(s["blocks"]) for s in f["stages"]] == [3, 4, 6, 3]
    assert [b["name"] for b in f["stages"][0]["blocks"]] == ["layer1.0", "layer1.1", "layer1.2"]
    assert [b["name"] for s in f["stages"] for b in s["blocks"] if b["shortcut"] == "projection"] == \
        ["layer2.0", "layer3.0", "layer4.0"]
    assert f["stem"][0][3] == (64, 112, 112) and f["stem"][-1][3] == (64, 56, 56) and f["output"] == (1000,)
    fig = d.draw_resnet34()
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    dashed = [p for p in arrows if p.get_linestyle() in ("--", "dashed")]
    assert len(dashed) == 3                                   # one per projection shortcut
    texts = drawn_texts(fig)
    for shape in ("(64, 56, 56)", "(128, 28, 28)", "(256, 14, 14)", "(512, 7, 7)"):
        assert shape in texts
    assert "ResNet-34: 16 blocks, 3 shortcuts that change the shape (dashed); input (3, 224, 224)" in texts
    pyplot().close(fig)


def test_resnet50_and_resnet20_facts():
    f = d.network_facts(resnet50(), (3, 224, 224))
    assert f["blocks"] == 16 and f["dashed"] == 4                 # layer1.0 widens 64 -> 256
    assert f["stages"][-1]["out_shape"] == (2048, 7, 7)
    assert all(b["convs"][1].startswith("3x3") and len(b["convs"]) == 3 for s in f["stages"] for b in s["blocks"])
    f = d.network_facts(resnet20(), (3, 32, 32))
    assert f["blocks"] == 9 and f["dashed"] == 2
    assert {b["shortcut"] for s in f["stages"] for b in s["blocks"]} == {"identity", "zero-pad"}
    assert [s["out_shape"] for s in f["stages"]] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_block_facts_follow_the_forward():
    model = resnet50()
    f = d.block_facts(model.layer2[0], (256, 56, 56))
    assert [r[0] for r in f["main"]] == ["conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "conv3", "bn3"]
    assert f["after_add"][0] == "relu3" and f["kind"] == "projection"
    assert [r[0] for r in f["shortcut"]] == ["downsample.0", "downsample.1"] and f["out_shape"] == (512, 28, 28)
    f = d.block_facts(resnet34().layer1[1], (64, 56, 56))
    assert [r[2] for r in f["main"] if r[1] == "Conv2d"] == ["3x3, 64", "3x3, 64"]
    assert f["shortcut"] == [] and f["kind"] == "identity"


def test_stride_placement_is_read_from_the_modules():
    v1, v15 = d.stride_facts(resnet50_v1()), d.stride_facts(resnet50())
    assert v1["layer1.0"] == v15["layer1.0"] == []
    for stage in ("layer2.0", "layer3.0", "layer4.0"):
        assert v1[stage] == ["conv1", "downsample.0"] and v15[stage] == ["conv2", "downsample.0"]


def test_im2col_columns_are_the_windows():
    f = d.im2col_facts(size=4, kernel=3)
    x = f["x"][0, 0]
    naive = np.stack([x[i:i + 3, j:j + 3].ravel() for i in range(f["OH"]) for j in range(f["OW"])], axis=1)
    assert f["matrix"].shape == (9, 4) and np.array_equal(f["matrix"], naive)


def test_col2im_counts_the_windows_on_each_pixel():
    for f in d.col2im_facts(size=5, kernel=3, settings=((1, 1), (2, 1), (2, 0))):
        s, p = f["stride"], f["padding"]
        naive = np.zeros((5 + 2 * p, 5 + 2 * p))
        n = (5 + 2 * p - 3) // s + 1
        for i in range(n):
            for j in range(n):
                naive[i * s:i * s + 3, j * s:j * s + 3] += 1
        assert np.array_equal(f["counts"], naive[p:p + 5, p:p + 5]) and f["windows"] == n * n


def test_padding_facts():
    f = d.padding_facts(size=8, kernel=3, stride=2)
    assert (f["same"]["before"], f["same"]["after"], f["same"]["out"]) == (0, 1, 4)
    assert (f["symmetric"]["before"], f["symmetric"]["after"], f["symmetric"]["out"]) == (1, 1, 4)
    assert f["same"]["starts"] == [0, 2, 4, 6] and f["symmetric"]["starts"] == [-1, 1, 3, 5]
    assert f["same"]["unread"] == [] and f["symmetric"]["unread"] == [8]
    assert f["stem"] == (2, 3)


def test_conv_matmul_and_grouped_facts():
    f = d.conv_matmul_facts("layer2.0.conv1", "resnet18")
    assert f["W"] == (128, 576) and f["columns"] == (576, 784) and f["Y"] == (128, 784)
    assert f["output"] == (1, 128, 28, 28) and f["ratio"] == pytest.approx(576 * 784 / (64 * 56 * 56))
    grouped, dense = d.grouped_facts()
    assert grouped["G"] == 32 and grouped["connected"].sum() == 128 * 4 and grouped["params"] == 128 * 4 * 9
    assert np.array_equal(grouped["connected"], np.kron(np.eye(32), np.ones((4, 4))).astype(bool))
    assert dense["G"] == 1 and dense["connected"].all()


def test_layer_facts():
    f = d.batch_norm_facts()
    assert np.allclose(f["mean"], f["x"].mean(axis=(0, 2, 3))) and f["count"] == 8 * 4 * 4
    assert np.allclose(f["y"].mean(axis=(0, 2, 3)), 0, atol=1e-6)
    assert np.allclose(f["y"].var(axis=(0, 2, 3)), 1, atol=1e-3)
    f = d.routing_facts()
    assert np.array_equal(f["relu_dx"], (f["x"] > 0).astype(float))
    assert f["pool_dx"].sum() == f["pool_dy"].sum() and np.count_nonzero(f["pool_dx"]) == f["pool_dy"].size
    k = f["k"]
    for i, j in np.ndindex(f["pool_y"].shape):
        window = f["x"][i * k:(i + 1) * k, j * k:(j + 1) * k]
        assert f["pool_dx"][i * k:(i + 1) * k, j * k:(j + 1) * k].ravel()[window.argmax()] == f["pool_dy"][i, j]
    f = d.layout_facts(N=1, C=3, H=2, W=3)
    assert f["strides"] == {"first": (18, 6, 3, 1), "last": (18, 1, 9, 3)}
    assert sorted(f["first"]) == sorted(f["last"]) and f["first"] != f["last"]
    assert f["last"][:3] == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]


def test_family_facts():
    params = d.params_facts()
    for name, f in params.items():
        assert sum(f["parts"].values()) == f["total"]
    assert params["resnet50"]["total"] == resnet50().num_parameters()
    depth = d.depth_facts()
    for name, f in depth.items():
        assert f["layers"] == int(name[len("resnet"):]), name          # resnet152 counts 152 layers
    assert depth["resnet34"]["blocks"] == [3, 4, 6, 3] and depth["resnet1202"]["blocks"] == [200, 200, 200]
    rows = d.receptive_field_facts("resnet18")
    assert rows[0][0] == "conv1" and rows[-1][3] == 435 and rows[-1][4] == 32
    assert len(rows) == 2 + 2 * 8 and all(a[3] < b[3] for a, b in zip(rows, rows[1:]))
    main_path = [n for n, m in resnet18().named_modules() if type(m).__name__ == "Conv2d" and "downsample" not in n]
    assert len(main_path) == 17


def test_gradient_norms_plain_spread_far_more_than_residual():
    f = d.gradient_norm_facts(depth=56)                                  # the figure's default
    plain, res = (np.array([v for _, v in f[k]]) for k in ("plain", "resnet"))
    assert len(plain) == len(res) == 55                                 # option A adds no convolution
    assert plain.max() / plain.min() > 30 * res.max() / res.min()       # seed 0: 4,433 against 16


def test_schedule_and_all_reduce_facts():
    f = d.schedule_facts(total=1000, lr=0.1, warmup=100, points=1001)
    assert f["milestones"] == [500, 750]
    assert f["step"][1][-1] == pytest.approx(0.001) and f["cosine"][1][-1] == pytest.approx(0.0)
    assert f["warmup"][1][0] == pytest.approx(0.01) and f["warmup"][1][100] == pytest.approx(0.1)
    assert np.all(f["constant"][1] == 0.1)
    f = d.all_reduce_facts(world_size=4, n=16)
    assert sorted(i for s in f["shards"] for i in s) == list(range(16)) and {len(s) for s in f["shards"]} == {4}
    for g in f["averaged"]:
        assert np.array_equal(g, f["averaged"][0]) and np.allclose(g, f["single"], atol=1e-12)
    assert np.allclose(np.mean(f["own"], axis=0), f["single"])


def test_degradation_draws_a_given_result(tiny_degradation, tmp_path):
    fig = d.draw_degradation(path=str(tmp_path / "deg.png"), result=tiny_degradation)
    assert isinstance(fig, Figure) and (tmp_path / "deg.png").read_bytes()[:8] == PNG


def test_draw_all_refuses_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="no figure called"):
        d.draw_all(str(tmp_path), ["resnet34", "nope"])
    assert not list(tmp_path.iterdir())


def test_the_make_figures_tool(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_figures", os.path.join(ROOT, "tools", "make_figures.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(tmp_path), "--only", "im2col", "same_padding"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["im2col.png", "same_padding.png"]
    assert "2 figures in" in capsys.readouterr().out
    assert tool.main([str(tmp_path), "--only", "nope"]) == 2
    assert "no figure called nope" in capsys.readouterr().err
    assert tool.main(["--list"]) == 0 and "resnet34" in capsys.readouterr().out.split()
    pytest.importorskip("sphinx", reason="the Chinese texts live with the book (docs/_ext), which needs sphinx")
    code = tool.main([str(tmp_path / "zh"), "--only", "im2col", "--language", "zh_CN"])
    if code == 1:
        assert "no CJK font" in capsys.readouterr().err
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    assert code == 0 and [p.name for p in (tmp_path / "zh").iterdir()] == ["im2col.zh_CN.png"]
