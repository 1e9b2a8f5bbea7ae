"""kernels.cpu._runtime: the shares of a job run at once on Numba's threads, in worker order, errors come back."""

import threading

import numba
import pytest

from minitorchseg.kernels.cpu import _runtime

pytestmark = pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs two Numba threads")


def test_shares_come_back_in_worker_order():
    blocks = list(range(7))
    assert _runtime.workers.map(lambda share, serial: (list(share), serial), blocks, 1 << 30) == [
        ([0, 2, 4, 6], True), ([1, 3, 5], True)]


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


def test_small_jobs_run_on_the_caller():
    caller = threading.get_ident()
    assert _runtime.workers.map(lambda share, serial: threading.get_ident(), [0, 1], 10) == [caller]
