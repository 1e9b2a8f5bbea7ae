"""Index decoding shared by the CUDA kernels' grid-stride loops (device functions).

Most kernels give one thread one element of a 3-D or 4-D output (``(P, Ho, Wo)``,
``(K, C, PH, PW)``, ...) and walk its flat C-order range ``t = 0..size − 1``
(:mod:`kernels.cuda._launch`); :func:`_unravel3_kernel` and :func:`_unravel4_kernel`
turn ``t`` back into the element's indices.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["unravel3", "unravel4"]


def _unravel3_kernel(t, d1, d2):
    """C-order indices ``(i0, i1, i2)`` of flat element ``t`` of an array ``(D0, d1, d2)``::

        i0 = t // (d1·d2);  i1 = (t // d2) % d1;  i2 = t % d2
    """
    return t // (d1 * d2), (t // d2) % d1, t % d2


def _unravel4_kernel(t, d1, d2, d3):
    """C-order indices ``(i0, i1, i2, i3)`` of flat element ``t`` of an array ``(D0, d1, d2, d3)``::

        i0 = t // (d1·d2·d3);  i1 = (t // (d2·d3)) % d1;  i2 = (t // d3) % d2;  i3 = t % d3
    """
    return t // (d1 * d2 * d3), (t // (d2 * d3)) % d1, (t // d3) % d2, t % d3


unravel3 = cuda.jit(device=True)(_unravel3_kernel)
unravel4 = cuda.jit(device=True)(_unravel4_kernel)
