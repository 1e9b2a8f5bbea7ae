"""The CPU's thread runtime: shares of a job on Numba's threads, per-thread scratch buffers, block sizing.

The CPU twin of :mod:`kernels.cuda._launch`: how a job is cut into pieces and who
runs them, written once for the kernels that pair a Numba loop with a BLAS call
(today :mod:`kernels.cpu.conv`). Three pieces:

* :func:`blocks` cuts a job over ``n_images`` images of ``rows`` rows into blocks of
  about ``min(BLOCK_BYTES, total / threads)`` bytes of scratch: whole images when
  they fit, else bands of rows of one image, so memory stays bounded at any image
  size and every worker gets some;
* :data:`workers` (a :class:`Workers`) runs the blocks: each of Numba's threads
  takes every T-th block and runs it start to finish, the Numba loop (its serial
  binding) then the GEMM with BLAS limited to one thread, so the only
  synchronisation is the final join. Results come back in worker order: any
  reduction over them is deterministic;
* :func:`scratch` hands each thread a reusable buffer (per dtype), so a block's
  columns are written and consumed while still in cache and nothing is allocated
  per block;
* :func:`empty` allocates the kernels' large outputs from :data:`outputs`, an
  :class:`OutputPool` that hands a freed buffer of the same size out again instead of
  asking the operating system for fresh pages.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading

import numba
import numpy as np

__all__ = ["BLOCK_BYTES", "PARALLEL_BYTES", "Workers", "workers", "scratch", "blocks", "empty", "OutputPool",
           "outputs"]

# Target bytes of one block's scratch. Blocks hold whole images when they fit,
# otherwise a band of rows (or, for col2im, of output channels) of one image, so
# memory stays bounded at any image size; a block is also no larger than an even
# share of the whole job, so that every worker gets some.
BLOCK_BYTES = 4 << 20
# Below this many bytes a job runs on the caller's thread alone: handing it to
# the workers would cost more than it saves.
PARALLEL_BYTES = 1 << 20


class Workers:
    """Runs the blocks of one convolution on Numba's threads, one BLAS thread each.

    Why not Numba's threads for im2col and BLAS's threads for the GEMM? The two
    pools would take turns on the same cores for every block: each hand-over is a
    barrier, and a thread that waits at one spins. Instead each of
    ``T = numba.get_num_threads()`` workers takes every T-th block and runs it
    start to finish on its own core — im2col (the serial kernel binding), then the
    GEMM with BLAS limited to one thread — so the only synchronisation is the
    final join.

    The workers are Numba's own threads, the pool that runs every parallel kernel
    (ReLU, batch norm, pooling, ...): a ``prange`` over the ``T`` shares whose body
    is an object-mode block calling back into Python (:func:`_run_shares`). One
    pool, not two: with the default OpenMP layer, Numba's threads spin for a while
    after each parallel kernel, waiting for the next one, and a second pool of
    Python threads running the convolution meanwhile had a core taken from it.
    Measured on a U-Net training step (batch 4, 176x240, 2 cores, this tree
    otherwise unchanged): 738 ms with a ``ThreadPoolExecutor`` of workers (605 ms
    with ``OMP_WAIT_POLICY=PASSIVE``), 504-521 ms on Numba's threads. Each worker keeps
    the Python thread state its first object-mode block made (:func:`_keep_thread_state`);
    made and deleted around every share, it cost about 0.1 ms per share.

    Small jobs (under :data:`PARALLEL_BYTES` of columns, or a single block) run on the
    caller with the serial kernels, and also with BLAS limited to one thread: a
    threaded GEMM woke OpenBLAS's threads while Numba's still spun, and a 1x1
    transposed conv of FCN-8s (4x11x47x55 -> 32 channels) took 13.9 ms in the
    training step against 1.6 ms alone. Limiting BLAS needs ``threadpoolctl``; without
    it every block runs on the caller with the parallel kernels and threaded BLAS.
    One convolution at a time uses the workers (the BLAS limit is process-wide).
    """

    def __init__(self):
        self._blas = None
        self._lock = threading.Lock()

    def _blas_limiter(self):
        """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl."""
        if self._blas is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self._blas = False
            else:
                self._blas = ThreadpoolController().select(user_api="blas")
        return self._blas or None

    def map(self, work, blocks: list, nbytes: int) -> list:
        """``[work(blocks[k::T], True) for k < T]`` on the workers, or ``[work(blocks, serial)]`` on the caller.

        ``work(blocks, serial)`` processes its blocks in order and returns a value
        (``serial``: use the serial kernel bindings); the results come back in
        worker order, so any reduction over them is deterministic. ``nbytes``:
        the job's total column bytes. An exception raised by a share is raised
        here, after every share has ended.
        """
        threads = min(numba.get_num_threads(), len(blocks))
        with self._lock:
            limiter = self._blas_limiter()
            if limiter is None:
                return [work(blocks, False)]
            if threads < 2 or nbytes < PARALLEL_BYTES:
                with limiter.limit(limits=1):
                    return [work(blocks, True)]
            global _job
            results = [None] * threads
            errors = [None] * threads
            _job = (work, blocks, threads, results, errors)
            try:
                with limiter.limit(limits=1):
                    _run_shares(threads)
            finally:
                _job = None
            for error in errors:
                if error is not None:
                    raise error
            return results


# The job that _run_shares is running: (work, blocks, T, results, errors). Set and
# cleared by Workers.map under its lock, so one job at a time.
_job = None


# Numba's threads that hold a Python thread state for good (see _keep_thread_state)
_kept_thread_states: set[int] = set()


def _keep_thread_state() -> None:
    """Keep the calling thread's Python thread state after its object-mode block ends, if it is one of Numba's.

    A Numba thread has no Python thread state of its own: each ``numba.objmode`` block makes one
    (``PyGILState_Ensure``) and deletes it at its end, which cost about 0.1 ms per share in a
    training step (SegNet's, batch 4, 78 convolution calls: 135-139 ms per step, 127-133 with the states
    kept, three alternated runs).
    One more ``PyGILState_Ensure``, never released, keeps the state alive: later blocks on that
    thread only take and drop the GIL. Python's own threads (the caller) are left alone.
    """
    ident = threading.get_ident()
    if ident in _kept_thread_states or ident == threading.main_thread().ident:
        return
    if any(thread.ident == ident for thread in threading.enumerate()):
        return                                         # a thread Python started: it has a state already
    _kept_thread_states.add(ident)
    ctypes.pythonapi.PyGILState_Ensure()


def _run_share(k: int) -> None:
    """Share ``k`` of the current job: ``results[k] = work(blocks[k::T], True)`` (or ``errors[k]``)."""
    _keep_thread_state()
    work, blocks, threads, results, errors = _job
    try:
        results[k] = work(blocks[k::threads], True)
    except BaseException as error:  # raised again by Workers.map, in the caller's thread
        errors[k] = error


@numba.njit(parallel=True)  # not cache=True: Numba 0.68 cannot reload an object-mode block in a prange
def _run_shares(threads):
    """``for k in prange(T): _run_share(k)`` on Numba's threads, one share each.

    The object-mode block takes the GIL only for the Python glue of a share; the
    serial Numba kernels (``nogil``) and the BLAS call inside it release it, so the
    shares run at the same time.
    """
    for k in numba.prange(threads):
        with numba.objmode():
            _run_share(k)


workers = Workers()
# (thread ident, dtype) -> that thread's scratch buffer. Not a threading.local: a worker is one of Numba's
# threads, whose Python thread state numba.objmode makes and deletes around each share unless
# _keep_thread_state keeps it, and a threading.local's values go with the thread state: every convolution
# then allocated its workers' scratch afresh (multi-megabyte, so fresh pages too; about 3 ms of SegNet's
# training step). Numba's threads live as long as the process, and so do their buffers.
_scratch_buffers: dict[tuple[int, str], np.ndarray] = {}


def scratch(size: int, dtype) -> np.ndarray:
    """A reusable buffer of at least ``size`` elements of ``dtype`` for the calling thread."""
    key = (threading.get_ident(), np.dtype(dtype).str)
    buffer = _scratch_buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = _scratch_buffers[key] = np.empty(size, dtype=dtype)
    return buffer[:size]


def blocks(n_images: int, rows: int, row_bytes: int) -> list[tuple[int, int, int, int]]:
    """Column blocks ``(n0, n1, y0, y1)``: images ``[n0, n1)``, rows ``[y0, y1)`` of each.

    A block holds about ``min(BLOCK_BYTES, total / threads)`` bytes of columns (at
    least one row of one image): whole images while one fits, else bands of rows
    of one image, all of the same height (± 1 row).
    """
    threads = max(1, numba.get_num_threads())
    budget = max(1, min(BLOCK_BYTES, -(-n_images * rows * row_bytes // threads)))
    image_bytes = max(1, rows * row_bytes)
    if image_bytes <= budget:
        b = max(1, min(n_images, budget // image_bytes))
        return [(n0, min(n_images, n0 + b), 0, rows) for n0 in range(0, n_images, b)]
    # as few bands as fit the budget, of equal height (± 1 row): with a short last band
    # the workers, which take every T-th block, would get unequal shares
    tallest = max(1, budget // max(1, row_bytes))
    bands = -(-rows // tallest)
    edges = [rows * k // bands for k in range(bands + 1)]
    return [(n0, n0 + 1, edges[k], edges[k + 1]) for n0 in range(n_images) for k in range(bands)]


class OutputPool:
    """Large output arrays recycled by size: a training step asks for the same shapes every time.

    A fresh multi-megabyte ``np.empty`` is memory the operating system has not mapped
    yet: every page costs a fault when first written, and glibc returns such blocks
    to the system when they are freed, so the next step faults on them again (about
    10 000 faults per U-Net step at batch 4, 176x240; its outputs took 2-3x longer
    inside the step than alone). The pool keeps every buffer of at least
    :data:`MIN_BYTES` it has handed out, keyed by its size in bytes, and hands one out
    again once nothing refers to it any more. An array it returns is a view of its
    buffer (``array.base``), and so is every view of that array: while any of them
    lives, the buffer's reference count is above the pool's own, and it is not reused.
    When it allocates a new buffer, idle buffers beyond :data:`IDLE_BYTES` in all are
    released (the sizes it saw first, first), so a run whose shapes keep changing
    (detection, evaluation at several sizes) does not hold on to memory it no longer
    uses. Thread-safe (one lock).
    """

    MIN_BYTES = 1 << 20
    IDLE_BYTES = 256 << 20

    def __init__(self):
        self._buffers: dict[int, list[np.ndarray]] = {}   # size in bytes → buffers, oldest first
        self._lock = threading.Lock()

    @staticmethod
    def _idle(buffer: np.ndarray) -> bool:
        # referenced only by the pool's list, the caller's loop variable, this parameter and getrefcount's argument
        return sys.getrefcount(buffer) <= 4

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype`` (``np.empty``'s contract)."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.MIN_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            same = self._buffers.setdefault(nbytes, [])
            for buffer in same:
                if self._idle(buffer):
                    return buffer.view(dtype).reshape(shape)
            self._release_idle()
            buffer = np.empty(nbytes, np.uint8)
            same.append(buffer)
            return buffer.view(dtype).reshape(shape)

    def _release_idle(self) -> None:
        """Drop idle buffers (sizes in the order first seen, the oldest of a size first) until at most
        :data:`IDLE_BYTES` are idle."""
        idle = [(nbytes, buffer) for nbytes, same in self._buffers.items() for buffer in same if self._idle(buffer)]
        excess = sum(nbytes for nbytes, _ in idle) - self.IDLE_BYTES
        for nbytes, buffer in idle:
            if excess <= 0:
                break
            self._buffers[nbytes] = [b for b in self._buffers[nbytes] if b is not buffer]
            excess -= nbytes

    def holds(self, array) -> bool:
        """Whether ``array`` is one of the pool's buffers (which the pool's list refers to once more)."""
        same = self._buffers.get(getattr(array, "nbytes", -1), ())
        return any(buffer is array for buffer in same)

    def held_bytes(self) -> tuple[int, int]:
        """``(bytes held, bytes idle)``."""
        with self._lock:
            sizes = [(nbytes, self._idle(b)) for nbytes, same in self._buffers.items() for b in same]
        return sum(n for n, _ in sizes), sum(n for n, idle in sizes if idle)

    def clear(self) -> None:
        """Forget every buffer (those still in use stay valid: their arrays keep them alive)."""
        with self._lock:
            self._buffers.clear()


outputs = OutputPool()


def empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` for a kernel's output, from :data:`outputs` when it is large."""
    return outputs.empty(shape, dtype)
