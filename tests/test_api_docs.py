"""The API reference is the docstrings (issue 27): every public name has one, and every model
builder shows its real arguments in help().

Public: the names in a package's ``__all__`` (a module without one: the names without a leading
underscore that it defines) that are functions or classes defined in minires, and the modules
named there. A class's own docstring counts, not one it inherits. The builders (``MODELS`` and
``KERAS_MODELS``) take their keywords by name, never ``**kwargs``: ``num_classes`` among them,
each explained in the docstring, with the shapes and an example; the examples of the cheap
ones are run. Each builder hands every keyword on to its class, with the class's defaults.
"""
import doctest
import importlib
import inspect
import pydoc

import numpy as np
import pytest

import minires.keras.models as keras_models
import minires.models.cifar as cifar
import minires.models.resnet as resnet
from minires.keras import KERAS_MODELS
from minires.models import MODELS

PACKAGES = ["minires", "minires.nn", "minires.models", "minires.keras", "minires.zoo", "minires.train",
            "minires.predict", "minires.explain", "minires.teach", "minires.parallel", "minires.weights",
            "minires.data", "minires.viz"]

# Public names still without a docstring, as "package.name", in files outside issue 27's change
# (teach/, train/, data/, predict/, cli.py). Write the docstring, then delete the name here: the
# test fails on a missing one not listed, and on a listed one that has its docstring now.
KNOWN_MISSING = set()
# Public functions that take only *args or **kwargs. xp_of(*arrays) takes any number of arrays, by
# nature; make_config(**options) takes the keys of train/runcheck.py's DEFAULTS, which help() does
# not show (train/ was outside issue 27's change): to fix there, then delete it here.
TAKES_ANY_NUMBER = {"minires.xp_of"}
KNOWN_HIDDEN = {"minires.train.make_config"}

BUILDERS = {**MODELS, **KERAS_MODELS}
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

# Builders whose docstring examples run here (a second or so in all); the others' examples are
# the same lines with another name, on nets that take seconds each to build.
RUN_EXAMPLES = [name for name, builder in MODELS.items() if builder.__module__ == "minires.models.cifar"]
RUN_EXAMPLES += ["resnet18", "resnext50_32x4d", "tf_resnet34", "tf_resnet50", "keras_resnet50",
                 "keras_resnet50v2"]

# The keywords each builder took before issue 27 (as **kw): it must take them still.
IMAGENET = {"num_classes", "include_top", "groups", "width_per_group", "zero_init_residual", "in_channels",
            "stride_in_1x1"}
FIXED = {"resnext50_32x4d": {"groups", "width_per_group"}, "resnext101_32x8d": {"groups", "width_per_group"},
         "wide_resnet50_2": {"width_per_group"}, "resnet50_v1": {"stride_in_1x1"}}
TF = {"num_classes", "include_top", "classifier_activation", "in_channels", "data_format", "preprocessing"}
KERAS = {"widths", "num_classes", "include_top", "classifier_activation", "in_channels", "data_format"}


def public_objects():
    """(package, name, object) for every public function, class and module of ``PACKAGES``."""
    found = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        found.append((package, "", module))
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n, v in vars(module).items() if not n.startswith("_")
                     and getattr(v, "__module__", None) == package]
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or ((inspect.isfunction(obj) or inspect.isclass(obj))
                                         and obj.__module__.startswith("minires")):
                found.append((package, name, obj))
    return found


def own_docstring(obj):
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    return doc if isinstance(doc, str) and doc.strip() else None


def missing_docstrings():
    return {f"{package}.{name}".rstrip(".") for package, name, obj in public_objects() if not own_docstring(obj)}


def test_the_walk_finds_the_public_names():
    names = {(package, name) for package, name, _ in public_objects()}
    assert {("minires.models", "resnet50"), ("minires.nn", "is_grad_enabled"), ("minires.viz", "plot_confusion"),
            ("minires.keras", "keras_resnet50v2"), ("minires.train", "fit")} <= names
    assert ("minires.viz", "to_numpy") not in names    # imported there, defined in minires.backend
    assert len(names) > 100


def test_every_public_name_has_a_docstring():
    missing = sorted(missing_docstrings() - KNOWN_MISSING)
    assert not missing, f"public names without a docstring (the API reference is built from them): {missing}"


def test_the_known_missing_list_only_shrinks():
    written = sorted(KNOWN_MISSING - missing_docstrings())
    assert not written, f"these have a docstring now (or are gone): delete them from KNOWN_MISSING: {written}"


def hiding_their_arguments():
    """Public functions that take only *args and **kwargs, as "package.name"."""
    return {f"{package}.{name}" for package, name, obj in public_objects() if inspect.isfunction(obj)
            and inspect.signature(obj).parameters
            and all(p.kind in VARIADIC for p in inspect.signature(obj).parameters.values())}


def test_no_public_function_hides_all_its_arguments():
    hidden = sorted(hiding_their_arguments() - TAKES_ANY_NUMBER - KNOWN_HIDDEN)
    assert not hidden, f"functions that take only *args/**kwargs: help() says nothing of their arguments: {hidden}"
    fixed = sorted(KNOWN_HIDDEN - hiding_their_arguments())
    assert not fixed, f"these show their arguments now (or are gone): delete them from KNOWN_HIDDEN: {fixed}"


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_shows_its_arguments(name):
    builder = BUILDERS[name]
    params = inspect.signature(builder).parameters
    assert builder.__name__ == builder.__qualname__ == name
    assert not [p for p in params.values() if p.kind in VARIADIC], f"{name} hides its arguments behind *args/**kw"
    assert "num_classes" in params
    assert f"{name}(" in pydoc.render_doc(builder) and "num_classes=" in pydoc.render_doc(builder)
    doc = inspect.getdoc(builder)
    arguments = doc.split("\nArguments:\n")[1]
    assert [line.split()[0] for line in arguments.splitlines() if not line.startswith(" " * 6)] == list(params)
    assert "(N, in_channels, H, W)" in doc and "-> " in doc and "(N, num_classes)" in doc
    assert f">>> model = {name}(" in doc


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_takes_every_keyword_it_took(name):
    """Before issue 27 the builders took **kw and handed it on: every keyword their class took
    (less those the builder fixes), by name only; the CIFAR ones the first few by position too."""
    sig = inspect.signature(BUILDERS[name])
    if name.startswith("plain"):
        sig.bind(10, 1, shortcut="B", zero_init_residual=True)
    elif BUILDERS[name].__module__ == cifar.__name__:
        sig.bind(10, "B", 1, residual=False, zero_init_residual=True)
    else:
        expected = TF if name.startswith("tf_") else KERAS if name in KERAS_MODELS else IMAGENET - FIXED.get(name, set())
        sig.bind(**dict.fromkeys(expected))
        with pytest.raises(TypeError):      # and by name only, as before
            sig.bind(10)


CLASSES = [(resnet, "ResNet"), (cifar, "CifarResNet"), (keras_models, "TFResNet"), (keras_models, "KerasResNet")]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_hands_every_keyword_on_with_its_class_default(name, monkeypatch):
    calls = []
    for module, cls_name in CLASSES:
        cls = getattr(module, cls_name)
        monkeypatch.setattr(module, cls_name, lambda *a, _cls=cls, **kw: calls.append((_cls, a, kw)))
    params = inspect.signature(BUILDERS[name]).parameters
    sentinels = {p: object() for p in params}
    BUILDERS[name](**sentinels)
    (cls, args, kwargs), = calls
    bound = inspect.signature(cls).bind(*args, **kwargs).arguments
    assert {p: bound.get(p) for p in params} == sentinels, f"{name} does not hand every keyword on to {cls.__name__}"
    class_defaults = inspect.signature(cls).parameters
    assert {p: v.default for p, v in params.items()} == {p: class_defaults[p].default for p in params}


@pytest.mark.parametrize("name", RUN_EXAMPLES)
def test_builder_example_runs(name):
    builder, report = BUILDERS[name], []
    tests = doctest.DocTestFinder(recurse=False).find(builder, name, globs={"np": np, name: builder})
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
