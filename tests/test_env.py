"""minires's environment variables, read once and strictly, every message naming the variable:
MINIRES_PLAIN (minires/nn/switches.py, read when minires is imported) and MINIRES_NUM_THREADS
(minires/parallel/threads.py:environment_threads, checked before anything is written)."""
import os
import re
import subprocess
import sys

import pytest

from minires import nn
from minires.parallel import threads
from minires.parallel.threads import ThreadParallel

PLAIN_REFUSED = "ValueError: MINIRES_PLAIN must be 1, 0, true or false (or unset), got {!r}"
THREADS_REFUSED = "MINIRES_NUM_THREADS must be a positive integer in ASCII digits (or unset), got {!r}"


def _import_minires(**env):
    """A fresh interpreter that imports minires and prints whether the plain path is on; ``None``
    in ``env`` removes the variable."""
    full = {k: v for k, v in dict(os.environ, **env).items() if v is not None}
    return subprocess.run([sys.executable, "-c", "import minires.nn as nn; print(nn.is_plain())"],
                          env=full, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value,plain", [("1", True), ("true", True), ("TRUE", True), (" True ", True),
                                         ("0", False), ("false", False), ("False", False), ("", False),
                                         (None, False)])
def test_minires_plain_takes_0_1_true_false(value, plain):
    out = _import_minires(MINIRES_PLAIN=value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(plain)


@pytest.mark.parametrize("value", ["yes", "2", "on", "no", "1.0", "\uff11"])    # the last: a full-width 1
def test_minires_plain_refuses_anything_else_naming_itself_and_its_values(value):
    """It used to take any value but "" and "0" for true: MINIRES_PLAIN=false turned the plain path on."""
    out = _import_minires(MINIRES_PLAIN=value)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == PLAIN_REFUSED.format(value)


def test_this_process_reads_minires_plain_once_at_import(monkeypatch):
    monkeypatch.setenv("MINIRES_PLAIN", "yes")          # too late: read when minires was imported
    assert not nn.is_plain()


@pytest.mark.parametrize("value,count", [("3", 3), (" 2 ", 2), ("04", 4), ("1", 1)])
def test_minires_num_threads_takes_a_positive_integer(monkeypatch, value, count):
    monkeypatch.setenv("MINIRES_NUM_THREADS", value)
    assert threads.environment_threads() == threads.default_threads() == count
    assert ThreadParallel(nn.Conv2d(1, 1, 1)).threads == count


@pytest.mark.parametrize("value", [None, "", "  "])
def test_minires_num_threads_unset_or_empty_means_every_core(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MINIRES_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("MINIRES_NUM_THREADS", value)
    assert threads.environment_threads() is None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert threads.default_threads() == cores


@pytest.mark.parametrize("value", ["abc", "two", "0", "00", "-1", "+2", "1.5", "2e3", "\u0663", "\uff13", "\u00b2"])
def test_minires_num_threads_refuses_anything_else_naming_itself(monkeypatch, value):
    """Non-ASCII digits (Arabic-Indic 3, full-width 3, superscript 2) among them: "\u00b2".isdigit() is
    True, and int() of it used to fail with "invalid literal for int()", without the variable's name."""
    monkeypatch.setenv("MINIRES_NUM_THREADS", value)
    refused = "^" + re.escape(THREADS_REFUSED.format(value)) + "$"
    with pytest.raises(ValueError, match=refused):
        threads.environment_threads()
    with pytest.raises(ValueError, match=refused):
        threads.default_threads()
    with pytest.raises(ValueError, match=refused):      # when the object is made, not at its first step
        ThreadParallel(nn.Conv2d(1, 1, 1))
    assert ThreadParallel(nn.Conv2d(1, 1, 1), threads=2).threads == 2      # a count given: the variable unread
