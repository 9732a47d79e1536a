"""minires.engine.memory: channel-major layout helpers and reused workspaces."""
import threading

import numpy as np

from minires.engine.memory import (channel_major, channel_major_matrix, empty_channel_major, from_channel_major_matrix,
                               release_workspaces, workspace, zeros_channel_major)


def test_channel_major_arrays_look_nchw_and_give_a_free_channel_major_matrix(rng):
    y = zeros_channel_major(np, (2, 3, 4, 5), np.float32)
    assert y.shape == (2, 3, 4, 5) and y.dtype == np.float32 and not y.any()
    y[...] = rng.standard_normal(y.shape)
    m = channel_major_matrix(y)                               # (C, N*H*W)
    assert m.shape == (3, 40) and np.shares_memory(m, y)
    np.testing.assert_array_equal(m[1], y[:, 1].ravel())
    np.testing.assert_array_equal(from_channel_major_matrix(m, y.shape), y)
    assert empty_channel_major(np, (2, 3, 4, 5), np.float64).shape == (2, 3, 4, 5)


def test_channel_major_matrix_copies_a_plain_nchw_array(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    m = channel_major_matrix(x)
    assert not np.shares_memory(m, x)
    np.testing.assert_array_equal(m, channel_major(x).reshape(3, -1))


def test_workspace_is_reused_grown_and_kept_apart_by_name_and_dtype():
    release_workspaces()
    a = workspace("test.a", (4, 5), np.float32, np)
    a[...] = 1
    b = workspace("test.a", (2, 3), np.float32, np)
    assert np.shares_memory(a, b)                  # same name, smaller: the same buffer
    c = workspace("test.a", (2, 3), np.float64, np)
    d = workspace("test.b", (2, 3), np.float32, np)
    assert not np.shares_memory(b, c) and not np.shares_memory(b, d)
    assert c.dtype == np.float64 and c.shape == (2, 3)
    big = workspace("test.a", (10, 10), np.float32, np)
    assert big.shape == (10, 10) and not np.shares_memory(big, a)   # grown: a new buffer
    release_workspaces()
    assert not np.shares_memory(workspace("test.a", (2, 3), np.float32, np), big)


def test_workspaces_are_per_thread():
    mine = workspace("test.thread", (8,), np.float32, np)
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(workspace("test.thread", (8,), np.float32, np)))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])

