"""Re-exports :func:`evsim.result_merge.merge`, defined here up to evsim 0.1 (merging
results needs no engine)."""

from ..result_merge import merge

__all__ = ["merge"]
