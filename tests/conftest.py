"""pytest configuration: hypothesis profiles and thread limits for tiny-shape tests.

The tests run thousands of tiny ops. BLAS worker threads (NumPy's OpenBLAS and
torch's) only add wake-up and spin time there, and on a 2-core machine they
fight Numba's own workers, so BLAS and torch are held to one thread. Numba's
``prange`` kernels keep their threads, so the parallel code paths are still the
ones under test.
"""

import os

import torch
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

threadpool_limits(limits=1, user_api="blas")
torch.set_num_threads(1)

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
