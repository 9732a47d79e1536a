"""minires.predict.imagenet: the class names and decoding a classifier's output."""
import numpy as np
import pytest

from minires.predict.imagenet import decode_predictions, imagenet_classes


def test_thousand_names_in_torchvision_order():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[1] == "goldfish"
    assert names[281] == "tabby" and names[207] == "golden retriever"
    assert names[999] == "toilet tissue"
    assert (names[134], names[517]) == ("crane bird", "crane")          # torchvision's disambiguation
    assert (names[638], names[639]) == ("maillot", "maillot tank suit")
    assert all(n == n.strip() and n for n in names)


def test_decode_predictions():
    logits = np.full((2, 1000), -5.0, dtype=np.float32)
    logits[0, 281], logits[0, 282] = 10.0, 9.0
    logits[1, 1] = 3.0
    top = decode_predictions(logits, k=3)
    assert [t[:2] for t in top[0][:2]] == [(281, "tabby"), (282, "tiger cat")]
    assert top[1][0][:2] == (1, "goldfish")
    p = top[0][0][2]
    assert 0 < p < 1 and top[0][0][2] > top[0][1][2] > top[0][2][2]
    single = decode_predictions(logits[0], k=1)
    assert single[0][0] == 281 and abs(single[0][2] - p) < 1e-12
    # probabilities of all 1000 classes sum to one
    assert abs(sum(x[2] for x in decode_predictions(logits[1], k=1000)) - 1) < 1e-9


def test_decode_predictions_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="k must be"):
        decode_predictions(np.zeros(1000), k=0)
