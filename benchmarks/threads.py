"""Thread count for a benchmark, fixed before NumPy's BLAS and Numba start.

Both engines must run with the same number of threads for a fair ratio, and
BLAS and Numba read these variables only when they are first imported.
"""

import os


def set_threads(argv: list[str], default: int) -> int:
    """Read ``--threads N`` from ``argv`` and export it to BLAS, OpenMP and Numba."""
    threads = argv[argv.index("--threads") + 1] if "--threads" in argv else str(default)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        os.environ[var] = threads
    return int(threads)
