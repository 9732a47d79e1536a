import pytest

from minires.cli import main


def test_gradcheck_command_checks_every_layer(capsys, device):
    assert main(["gradcheck", "--seed", "1", "--device", device]) == 0
    out = capsys.readouterr().out
    for layer in ["Conv2d", "BatchNorm2d, train", "BatchNorm2d, eval", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d",
                  "Linear", "Dropout", "CrossEntropyLoss"]:
        assert layer in out
    assert "13 of 13 checks passed" in out and "FAIL" not in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: minires" in capsys.readouterr().out


def test_unknown_option_exits_non_zero():
    with pytest.raises(SystemExit) as e:
        main(["gradcheck", "--device", "tpu"])
    assert e.value.code != 0
