"""Device-neutral helpers: the arithmetic both devices share, written once, compiled by each.

Every function here is plain Python with no compiler attached. The device
modules bind it to their own compiler at module level, as MiniTorch binds the
helpers of ``tensor_data.py`` in ``fast_ops.py`` and ``cuda_ops.py``::

    _window_max = njit(cache=True)(window_max)            # kernels/cpu/pool.py
    _window_max = cuda.jit(device=True)(window_max)       # kernels/cuda/pool.py

so ``NUMBA_DISABLE_JIT=1`` (or the CUDA simulator) runs this very code as
Python. A helper called from inside another helper cannot be bound per device
(the caller looks it up in *this* module's globals); it is registered with
``numba.extending.register_jitable`` instead, which either compiler inlines into
its caller (:func:`kernels.shared.roi_pool.round_half_away`).

One module per op:

==================================  ==================================================================
module                              helpers
==================================  ==================================================================
:mod:`kernels.shared.pool`          ``window_max`` (torch's max-pool window scan)
:mod:`kernels.shared.roi_align`     ``roi_geometry``, ``sample_coord``, ``bilinear``
:mod:`kernels.shared.roi_pool`      ``FLT_MAX``, ``round_half_away``, ``roi_box``, ``bin_range``
:mod:`kernels.shared.interpolate`   ``bilinear_taps``, ``nearest_taps`` and their ``_hw`` pairs (host NumPy)
:mod:`kernels.shared.kmeans`        ``nearest_center``, ``check_shapes``
:mod:`kernels.shared.nms`           ``descending_order`` (host NumPy)
:mod:`kernels.shared.cross_entropy` ``pixel_forward``, ``pixel_backward``, ``pixel_loss`` (``register_jitable``)
:mod:`kernels.shared.adam`          ``adam_element``, ``adam_scalars`` (host)
==================================  ==================================================================

Numba's on-disk cache (``cache=True``) is checked against the source file of the
kernel it compiled, not of the helpers inlined into it: after editing a helper
here, touch the device modules that use it (or delete their ``__pycache__``),
or the cached machine code keeps running.

Host-side size formulas (output sizes, conv's input-gradient ``output_padding``)
live in :mod:`kernels.geometry`.
"""
