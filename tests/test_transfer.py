"""Transfer learning (issue 28): Module.freeze / unfreeze, SGD skipping frozen parameters, and
minires.train.transfer (with_new_head, feature_channels, trunk_features)."""
import doctest

import numpy as np
import pytest

import minires.train.transfer as transfer
from minires import nn
from minires.models import resnet18, resnet20, resnet50
from minires.nn import CrossEntropyLoss, Linear
from minires.train import SGD
from minires.train.transfer import feature_channels, trunk_features, with_new_head


@pytest.fixture
def digits_batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 8)


def snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def train_steps(model, x, y, steps=3, **sgd):
    model.train()
    opt, loss = SGD(model.parameters(), lr=0.1, **sgd), CrossEntropyLoss()
    for _ in range(steps):
        loss(model(x), y)
        opt.zero_grad()
        model.backward(loss.backward())
        opt.step()
    return opt


def test_freeze_sets_requires_grad_and_keeps_eval_mode_through_train():
    model = resnet20(num_classes=3, in_channels=1)
    assert all(p.requires_grad for p in model.parameters())
    assert model.layer1.freeze() is model.layer1
    model.train()
    assert not any(m.training for m in model.layer1.modules()) and model.layer2.training and model.training
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    model.layer1.unfreeze()
    assert all(p.requires_grad for p in model.parameters()) and not model.layer1.training   # until train()
    model.train()
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 1e-2)])
def test_frozen_parameters_and_running_stats_do_not_change_the_head_does(digits_batch, momentum, weight_decay):
    x, y = digits_batch
    model = with_new_head(resnet20(num_classes=5, in_channels=1), num_classes=3)
    before = snapshot(model)
    train_steps(model, x, y, momentum=momentum, weight_decay=weight_decay)
    after = model.state_dict()
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed == {"fc.weight", "fc.bias"}        # no trunk weight, no running mean or variance
    assert all(not m.training for name, m in model.named_modules() if name and not name.startswith("fc"))


def test_frozen_model_matches_its_eval_mode_features(digits_batch):
    x, _ = digits_batch
    model = with_new_head(resnet20(num_classes=5, in_channels=1), num_classes=3).train()
    train_out = model(x)
    assert np.array_equal(train_out, model.eval()(x))    # only the head is trainable and Linear has no mode


def test_unfrozen_parameters_do_change(digits_batch):
    x, y = digits_batch
    model = with_new_head(resnet20(num_classes=5, in_channels=1), num_classes=3, freeze=False)
    before = snapshot(model)
    train_steps(model, x, y)
    assert not np.array_equal(before["conv1.weight"], model.conv1.weight.data)


def test_sgd_state_dict_with_frozen_parameters_resumes(digits_batch):
    x, y = digits_batch
    model = with_new_head(resnet20(num_classes=5, in_channels=1), num_classes=3)
    opt = train_steps(model, x, y, momentum=0.9)
    state = opt.state_dict()
    assert len(state["buffers"]) == len(opt.params)
    frozen = [i for i, p in enumerate(opt.params) if not p.requires_grad]
    assert frozen and all(not state["buffers"][i].any() for i in frozen)
    again = SGD(model.parameters(), lr=0.1, momentum=0.9)
    again.load_state_dict(state)
    assert np.array_equal(again.buffers[-1], opt.buffers[-1])


def test_include_top_false_shapes_and_new_head():
    trunk = resnet18(include_top=False, in_channels=1)
    x = np.random.default_rng(1).standard_normal((2, 1, 64, 64)).astype(np.float32)
    assert trunk(x).shape == (2, 512, 2, 2) and feature_channels(trunk) == 512
    assert feature_channels(resnet50(include_top=False)) == 2048
    model = with_new_head(trunk, num_classes=4)
    assert isinstance(model, nn.Sequential) and model[0] is trunk
    assert model(x).shape == (2, 4)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["3.weight", "3.bias"]
    assert isinstance(model[3], Linear) and model[3].in_features == 512


def test_trunk_features_keep_nothing_and_restore_the_mode():
    trunk = resnet20(num_classes=5, in_channels=1).train()
    x = np.random.default_rng(2).standard_normal((5, 1, 8, 8)).astype(np.float32)
    f = trunk_features(trunk, x, batch_size=2)
    assert f.shape == (5, 5) and trunk.training
    with pytest.raises(RuntimeError, match="without a forward"):     # nothing was kept for a backward
        trunk.fc.backward(f)
    assert np.allclose(f, trunk.eval()(x), atol=1e-6)


def test_with_new_head_refuses_what_it_cannot_use():
    from minires.keras import tf_resnet34
    with pytest.raises(ValueError, match="classifier_activation=None"):
        with_new_head(tf_resnet34(num_classes=3), 2)
    with pytest.raises(TypeError, match="a Module"):
        with_new_head(object(), 2)
    with pytest.raises(ValueError, match="include_top=False"):
        with_new_head(nn.Sequential(nn.ReLU()), 2)


def test_examples_in_the_docstrings_run():
    globs = {"np": np, "resnet20": resnet20, "resnet18": resnet18, "resnet50": resnet50, **vars(transfer)}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(transfer, globs=globs):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted >= 5
