import os
import sys
from pathlib import Path

# The tests share small helpers (tests/dyadic.py) without being a package.
sys.path.insert(0, str(Path(__file__).parent))

# One event-engine run loop with every optional kernel, compiled once per dtype, serves
# every network the suite builds (and its subprocesses): compiling one loop per
# combination of kernels took most of a fresh suite's time. The tests of the default,
# one loop per combination, set "needed" themselves.
os.environ.setdefault("EVSIM_KERNELS", "all")
