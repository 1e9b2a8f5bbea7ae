"""Index decoding shared by the CUDA kernels' grid-stride loops (device functions).

Most kernels give one thread one element of a 4-D output ``(D0, D1, D2, D3)`` and
walk the flat C-order range ``t = 0..D0·D1·D2·D3 − 1`` (:mod:`kernels.cuda._launch`);
:func:`_unravel4_kernel` turns ``t`` back into the element's four indices.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["unravel4"]


def _unravel4_kernel(t, d1, d2, d3):
    """C-order indices ``(i0, i1, i2, i3)`` of flat element ``t`` of an array ``(D0, d1, d2, d3)``::

        i0 = t // (d1·d2·d3);  i1 = (t // (d2·d3)) % d1;  i2 = (t // d3) % d2;  i3 = t % d3
    """
    return t // (d1 * d2 * d3), (t // (d2 * d3)) % d1, (t // d3) % d2, t % d3


unravel4 = cuda.jit(device=True)(_unravel4_kernel)
