"""kernels.cpu._runtime: the shares of a job run at once on Numba's threads, in worker order, errors come back."""

import threading

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import _runtime

pytestmark = pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs two Numba threads")


def test_shares_come_back_in_worker_order():
    """Worker k gets blocks k, k+T, k+2T, ... (T = the threads, at most one per block); on 2 threads
    ``[0, 2, 4, 6]`` and ``[1, 3, 5]``."""
    blocks = list(range(7))
    threads = min(numba.get_num_threads(), len(blocks))
    assert _runtime.workers.map(lambda share, serial: (list(share), serial), blocks, 1 << 30) == [
        (blocks[k::threads], True) for k in range(threads)]


def test_shares_run_at_the_same_time():
    """Each share waits at a two-party barrier: run one after the other, the first would time out."""
    barrier = threading.Barrier(2, timeout=20)

    def work(share, serial):
        barrier.wait()
        return threading.get_ident()

    first, second = _runtime.workers.map(work, [0, 1], 1 << 30)
    assert first != second


def test_an_error_in_a_share_is_raised_in_the_caller_and_the_workers_stay_usable():
    def work(share, serial):
        if 1 in share:
            raise ValueError("share with block 1 failed")
        return sum(share)

    with pytest.raises(ValueError, match="block 1"):
        _runtime.workers.map(work, [0, 1], 1 << 30)
    assert _runtime.workers.map(lambda share, serial: sum(share), [2, 3], 1 << 30) == [2, 3]


def test_a_worker_keeps_its_python_thread_state_and_its_scratch_between_jobs():
    """A thread-local value set by a share on one of Numba's threads is still there in the next job (its
    Python thread state was kept, not made and deleted around each share), and so is its scratch buffer."""
    local = threading.local()

    def work(share, serial):
        seen = getattr(local, "mark", None)
        local.mark = threading.get_ident()
        return threading.get_ident(), seen, _runtime.scratch(1 << 16, np.float32).ctypes.data

    caller = threading.get_ident()
    for _ in range(3):    # a worker's first job ever may be one of these
        first = dict((ident, (seen, buffer)) for ident, seen, buffer in _runtime.workers.map(work, [0, 1], 1 << 30))
    second = dict((ident, (seen, buffer)) for ident, seen, buffer in _runtime.workers.map(work, [0, 1], 1 << 30))
    workers = [ident for ident in second if ident != caller]
    assert workers, "no share ran on one of Numba's threads"
    for ident in workers:
        assert second[ident][0] == ident                 # the thread-local value survived
        assert ident not in first or second[ident][1] == first[ident][1]    # the same scratch buffer


def test_small_jobs_run_on_the_caller():
    caller = threading.get_ident()
    assert _runtime.workers.map(lambda share, serial: threading.get_ident(), [0, 1], 10) == [caller]


@settings(max_examples=200)
@given(n_images=st.integers(1, 6), rows=st.integers(1, 60), row_bytes=st.integers(1, 1 << 22))
def test_blocks_cover_every_row_once_in_bands_of_equal_height(n_images, rows, row_bytes):
    """Every (image, row) in exactly one block; within the budget (unless one row exceeds it); bands ±1 row.

    Unequal bands (a short last one) gave one worker every long band, since
    workers take every T-th block: a 64-channel 44x60 conv ran 7.1 instead of 5.3 ms.
    """
    blocks = _runtime.blocks(n_images, rows, row_bytes)
    seen = [(n, y) for n0, n1, y0, y1 in blocks for n in range(n0, n1) for y in range(y0, y1)]
    assert sorted(seen) == [(n, y) for n in range(n_images) for y in range(rows)]
    threads = numba.get_num_threads()
    budget = min(_runtime.BLOCK_BYTES, -(-n_images * rows * row_bytes // threads))
    for n0, n1, y0, y1 in blocks:
        assert (n1 - n0) * (y1 - y0) * row_bytes <= max(budget, row_bytes)
    heights = {y1 - y0 for n0, n1, y0, y1 in blocks if n1 - n0 == 1 and (y0, y1) != (0, rows)}
    assert not heights or max(heights) - min(heights) <= 1


def test_output_pool_reuses_a_buffer_only_when_nothing_refers_to_it():
    """A freed large output is handed out again (same memory); not while the array or any view of it lives;
    small requests and other sizes get their own memory; the dtype and shape asked for are returned."""
    pool = _runtime.OutputPool()
    shape = (2, 8, 128, 129)                                  # 1 MiB and a bit in float32
    a = pool.empty(shape, np.float32)
    assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    address = a.ctypes.data
    view = a[:, 1:3]
    del a
    b = pool.empty(shape, np.float32)
    assert b.ctypes.data != address                           # the view still holds the first buffer
    del view
    c = pool.empty((8, 128, 129, 2), np.int32)                # same size in bytes, another shape and dtype
    assert c.ctypes.data == address and c.dtype == np.int32 and c.shape == (8, 128, 129, 2)
    c[...] = 7
    assert (c == 7).all()
    held, idle = pool.held_bytes()
    assert held == 2 * b.nbytes and idle == 0
    small = pool.empty((16, 16), np.float64)
    assert pool.held_bytes()[0] == held and small.shape == (16, 16)   # below MIN_BYTES: plain np.empty
    del b, c
    assert pool.held_bytes() == (held, held)


def test_output_pool_releases_idle_buffers_beyond_its_limit(monkeypatch):
    """Idle buffers beyond IDLE_BYTES are dropped when a new buffer is allocated, the sizes seen first first and
    no more than needed; buffers in use are never dropped."""
    pool = _runtime.OutputPool()
    monkeypatch.setattr(_runtime.OutputPool, "IDLE_BYTES", 6 << 20)
    kept = pool.empty(1 << 20, np.uint8)                      # in use throughout
    for k in range(2, 7):                                     # 2, 3, ... 6 MiB, each freed at once
        pool.empty(k << 20, np.uint8)
    assert pool.held_bytes() == (12 << 20, 11 << 20)          # idle: the 5 and 6 MiB buffers (2, 3, 4 went)
    probe = pool.empty(1 << 20, np.uint8)                     # a new buffer: the oldest idle one (5 MiB) goes
    assert pool.held_bytes() == (8 << 20, 6 << 20)
    assert sorted(pool._buffers[1 << 20], key=id) == sorted([kept.base, probe.base], key=id)
