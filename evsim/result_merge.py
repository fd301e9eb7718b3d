"""Joining the results of image shards of one run: :func:`merge`.

Simulate disjoint, contiguous slices of a data set (each with
``first_image=`` its offset, so rate-coded inputs draw the whole run's
spikes), then ``merge`` the results: outputs, per-image counts and membrane
traces are concatenated in image order, summed counts, SOPs and pooling
operations are added, and spike trains are re-indexed to the merged batch.

The merged result equals the whole run's exactly for the event engine. The
dense engine computes a chunk of ``batch_size`` images at once, so its float
outputs (and the order of spike-train entries) match the whole run's when
every shard starts at a multiple of ``batch_size``; spike counts and SOPs
always match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import EvsimTypeError, EvsimValueError
from .result import SimResult, SpikeTrain

#: Fields that must be equal in every shard of one run.
_SAME_RUN = ("T", "engine", "encoding", "dtype", "time_scheme", "latency", "seed", "batch_size",
             "per_image_counts", "network_hash", "method", "options", "evsim_version", "macs",
             "neurons")


def _same(a, b) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b)
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _check_one_run(results: Sequence[SimResult]) -> None:
    first = results[0]
    if not first.network_hash:
        raise EvsimValueError("these results do not say which network made them "
                              "(network_hash is empty); merge results made by evsim.simulate")
    for i, result in enumerate(results[1:], 1):
        for name in _SAME_RUN:
            if not _same(getattr(first, name), getattr(result, name)):
                raise EvsimValueError(
                    f"results 0 and {i} come from different runs: their {name} differ "
                    f"({getattr(first, name)!r} and {getattr(result, name)!r}); merge shards "
                    "of one run only (same network, T, engine, options and seed)")
        if not np.array_equal(first.checkpoints, result.checkpoints):
            raise EvsimValueError(f"results 0 and {i} come from different runs: their "
                                  f"checkpoints differ ({first.checkpoints.tolist()} and "
                                  f"{result.checkpoints.tolist()})")
        for table in ("spike_counts", "sops", "pool_ops", "membrane", "membrane_before_reset",
                      "spike_trains", "pool_spike_counts"):
            if list(getattr(first, table)) != list(getattr(result, table)):
                raise EvsimValueError(f"results 0 and {i} come from different runs: they hold "
                                      f"{table} of different layers")
        if not _same(first.recorded, result.recorded):
            raise EvsimValueError(f"results 0 and {i} come from different runs: they recorded "
                                  "different neurons")


def _check_contiguous(shards: list[SimResult]) -> None:
    for before, after in zip(shards, shards[1:]):
        end = before.first_image + before.n_images
        if after.first_image < end:
            raise EvsimValueError(
                f"two shards overlap: one covers images [{before.first_image}, {end}), another "
                f"[{after.first_image}, {after.first_image + after.n_images}); each image must "
                "be simulated once")
        if after.first_image > end:
            raise EvsimValueError(f"images [{end}, {after.first_image}) are in no shard; merge "
                                  "contiguous shards (simulate the missing images first)")


def merge(results: Sequence[SimResult]) -> SimResult:
    """The result the whole batch would have given, from results of its image shards.

    Parameters
    ----------
    results:
        Results of one run (same network, T, checkpoints, engine, encoding,
        dtype, seed, batch size and options) on disjoint, contiguous image
        ranges ``[first_image, first_image + n_images)``, in any order.

    Returns
    -------
    A :class:`SimResult` covering all their images, starting at the smallest
    ``first_image``.

    Raises
    ------
    EvsimValueError
        For results of different runs, overlapping shards or missing images.
    """
    results = list(results)
    if not results:
        raise EvsimValueError("merge needs at least one result")
    for result in results:
        if not isinstance(result, SimResult):
            raise EvsimTypeError(f"merge joins SimResults, got {type(result).__name__}")
    _check_one_run(results)
    shards = sorted(results, key=lambda r: r.first_image)
    _check_contiguous(shards)
    first = shards[0]
    offsets = [r.first_image - first.first_image for r in shards]

    def summed(table: str) -> dict[str, np.ndarray]:
        return {k: np.sum([getattr(r, table)[k] for r in shards], axis=0,
                          dtype=getattr(first, table)[k].dtype)
                for k in getattr(first, table)}

    counts, pooled = (({k: np.concatenate([getattr(r, table)[k] for r in shards])
                        for k in getattr(first, table)} if first.per_image_counts
                       else summed(table)) for table in ("spike_counts", "pool_spike_counts"))
    trains = {k: SpikeTrain(*(np.concatenate([getattr(r.spike_trains[k], part)
                                              + (offset if part == "images" else 0)
                                              for r, offset in zip(shards, offsets)])
                              .astype(getattr(first.spike_trains[k], part).dtype)
                              for part in ("steps", "images", "neurons", "counts")))
              for k in first.spike_trains}
    return SimResult(
        T=first.T, checkpoints=first.checkpoints.copy(),
        outputs=np.concatenate([r.outputs for r in shards], axis=1), spike_counts=counts,
        sops=summed("sops"), pool_ops=summed("pool_ops"), macs=dict(first.macs),
        neurons=dict(first.neurons), n_images=sum(r.n_images for r in shards),
        engine=first.engine, encoding=first.encoding, dtype=first.dtype,
        time_scheme=first.time_scheme, latency=first.latency,
        recorded={k: v.copy() for k, v in first.recorded.items()}, spike_trains=trains,
        membrane={k: np.concatenate([r.membrane[k] for r in shards], axis=1)
                  for k in first.membrane},
        membrane_before_reset={k: np.concatenate([r.membrane_before_reset[k] for r in shards],
                                                 axis=1)
                               for k in first.membrane_before_reset},
        negative_spikes={k: sum(r.negative_spikes.get(k, 0) for r in shards)
                         for k in first.negative_spikes},
        seed=first.seed, first_image=first.first_image, batch_size=first.batch_size,
        per_image_counts=first.per_image_counts, network_hash=first.network_hash,
        method=first.method, options=dict(first.options), evsim_version=first.evsim_version,
        pool_spike_counts=pooled)


__all__ = ["merge"]
