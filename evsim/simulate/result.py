"""The provenance that :func:`evsim.simulate` records in a :class:`~evsim.result.SimResult`.

The result types themselves live in :mod:`evsim.result` (no engine); they are re-exported
here, where they were defined up to evsim 0.1.
"""

from __future__ import annotations

from .._version import __version__
from ..io.hashing import content_hash
from ..result import (ResultDifference, SimResult, SpikeTrain, compare, default_checkpoints,
                      difference, results_equal)
from ..spiking import SpikingNetwork


def provenance(snn: SpikingNetwork, *, seed: int, first_image: int, batch_size: int,
               per_image_counts: bool) -> dict:
    """The provenance fields of a :class:`SimResult` of ``snn`` simulated with these
    arguments (``SimResult(..., **provenance(...))``)."""
    return {"seed": int(seed), "first_image": int(first_image), "batch_size": int(batch_size),
            "per_image_counts": bool(per_image_counts), "network_hash": content_hash(snn),
            "method": snn.method, "options": dict(snn.options), "evsim_version": __version__}


__all__ = ["provenance", "SimResult", "SpikeTrain", "ResultDifference", "difference",
           "results_equal", "default_checkpoints", "compare"]
