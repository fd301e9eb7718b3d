"""The one-line notice before an engine's kernels are first compiled on a machine.

A first compile takes seconds; later runs load the kernels from Numba's
cache on disk, and say nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def ready(kernel, accept: Callable[[tuple], bool] = lambda signature: True) -> bool:
    """Whether the Numba dispatcher ``kernel`` has an overload whose signature ``accept``
    takes, compiled in this process or cached on disk."""
    if any(accept(signature) for signature in kernel.signatures):
        return True
    index = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
    try:  # Numba internals: keys (signature, ...) of the overloads cached on disk
        cached = [key[0] for key in index._load_index()]
    except Exception:  # another Numba version: trust the cache index file, if any
        path = getattr(index, "_index_path", None)
        return path is not None and os.path.exists(path)
    return any(accept(signature) for signature in cached)


def announce(what: str, seconds: float, parts: list[str] = (), others: bool = True) -> None:
    """Say on stderr that ``what`` is being compiled, for ``parts`` (the kernels a network of
    this kind needs: with ``others``, another kind of network compiles its own once), taking
    about ``seconds``."""
    needs = f" for {_listed(parts)}" if parts else ""
    later = ("later runs load it from Numba's cache, and a network needing other kernels "
             "compiles them once" if others else
             "later runs, of any network, load it from Numba's cache")
    print(f"evsim: compiling {what} once{needs} (about {seconds} s; {later})",
          file=sys.stderr, flush=True)


def _listed(parts: list[str]) -> str:
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


__all__ = ["ready", "announce"]
