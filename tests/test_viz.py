"""minires.viz: figures come back as Figures and PNGs; a notebook's inline backend is left alone."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install matplotlib)")

from minires import viz  # noqa: E402


@pytest.mark.parametrize("backend, switched", [
    ("inline", False),                                        # Jupyter, matplotlib >= 3.9
    ("module://matplotlib_inline.backend_inline", False),     # Jupyter, older matplotlib
    ("agg", False),
    ("TkAgg", True),                                          # a GUI backend: Agg instead, no screen needed
])
def test_the_notebook_backend_is_kept_and_gui_backends_become_agg(backend, switched, monkeypatch):
    used = []
    monkeypatch.setattr(matplotlib, "get_backend", lambda: backend)
    monkeypatch.setattr(matplotlib, "use", lambda name: used.append(name))
    viz.pyplot()
    assert used == (["Agg"] if switched else [])


def test_confusion_matrix_and_its_text(tmp_path):
    m = viz.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    text = viz.format_confusion(m, ["a", "b", "c"])
    assert "<- predicted" in text and len(text.splitlines()) == 4
    fig = viz.plot_confusion(m, ["a", "b", "c"], str(tmp_path / "c.png"))
    assert fig.axes and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
