"""The event-driven engine: compiled program, Numba kernels, one image per thread.

A chunk of images is advanced through blocks of steps (each block one call
of :func:`~evsim.simulate.kernels.run_steps`, sized to take about
:data:`BLOCK_SECONDS`), so that progress advances during a chunk; Ctrl-C
sets a flag that the kernels check at every step, so a run stops within a
step however long its current block turned out to be. The images'
workspaces carry the simulation from block to block; they are taken once per
simulation, in memory borrowed from the run before (:func:`evsim.arena.borrow`),
and reset by the kernels when an image starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import wait

import numba
import numpy as np

from ..arena import Arena, borrow
from ..errors import EvsimValueError
from ..signals import analog_head
from ..spiking import SpikingNetwork
from ..threads import on_pool
from .compile import EventProgram, channels_last, compiled
from ..engines import ChunkResult, EngineSetup
from .kernels import kernel_paths, run_steps
from .notice import announce, ready

#: Target wall time of one call into the kernels (progress is reported in between).
BLOCK_SECONDS = 0.25
#: The most steps one call simulates (bounds the per-image SOP buffers).
BLOCK_STEPS = 1024
#: The most a block of steps grows from one call to the next (the first steps, while
#: activity builds up, can be faster than later ones). With 4, a run of T = 32 took
#: blocks of 1, 4, 16 and 11 steps, each call ending when its slowest group does; with
#: 32, 1 and 31: ``fashion_cnn`` and ``resnet`` (64 images) 1.03x faster at two threads
#: and ``fashion_cnn`` 1.05x at one, alternated processes, the same results.
BLOCK_GROWTH = 32
#: Groups of images per thread (at several threads): a core that runs faster, or is not
#: shared with another process at the moment, takes more of them.
GROUPS_PER_THREAD = 4
#: First-call compile time of the kernels with an empty cache, as measured (BENCHMARKS.md):
#: about 10 s on a Zen 4 core, 16-19 s on a Zen 3 one; with every optional kernel
#: (:data:`KERNELS_VARIABLE`) 24 s there.
COMPILE_SECONDS = 15
ALL_KERNELS_COMPILE_SECONDS = 25
#: The environment variable that chooses what the run loop is compiled with: ``needed``
#: (default: the optional kernels the network uses, the quickest compile and one per
#: combination) or ``all`` (every optional kernel: one compile, cached, serves every
#: network; for running many kinds of network, as a test suite does).
KERNELS_VARIABLE = "EVSIM_KERNELS"


def lined(shape: tuple[int, ...], dtype) -> tuple[int, ...]:
    """``shape`` with its last axis padded to whole 64-byte cache lines."""
    per_line = 64 // np.dtype(dtype).itemsize
    return tuple(shape[:-1]) + (-(-shape[-1] // per_line) * per_line,)


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary, with rows
    padded to whole cache lines (the kernels' vector loads then stay within lines)."""
    return Arena().take("array", lined(shape, dtype), dtype, align=64)


class Workspace:
    """Per-image working memory for up to ``capacity`` images (none of it grows with T), in
    the memory of ``arena`` (default: a new one; a runner borrows one,
    :func:`evsim.arena.borrow`, so that a run does not touch new pages)."""

    def __init__(self, program: EventProgram, capacity: int, n_checkpoints: int,
                 arena: Arena | None = None):
        take = (Arena() if arena is None else arena).take
        self.buf = take("buf", lined((capacity, max(program.float_size, 1)), program.dtype),
                        program.dtype, align=64)
        self.state = take("state", (capacity, program.int_size), np.int64)
        self.idx = take("idx", (capacity, program.event_capacity), np.int32)
        self.mult = take("mult", (capacity, program.event_capacity), program.dtype)
        self.n_events = take("n_events", (capacity, len(program.event_offsets) - 1), np.int64)
        self.out = take("out", (capacity, n_checkpoints, program.readout_size), program.dtype)
        self.counts = take("counts", (capacity, max(program.n_counts, 1)), np.int64)
        self.sops = take("sops", (capacity, max(len(program.sop_layers), 1), BLOCK_STEPS),
                         np.int64)
        self.pool_ops = take("pool_ops", (capacity, max(len(program.pool_layers), 1),
                                          BLOCK_STEPS), np.int64)

    def rows(self, batch: int) -> tuple[np.ndarray, ...]:
        """The first ``batch`` images' arrays, in run_steps' argument order."""
        return tuple(a[:batch] for a in (self.buf, self.state, self.idx, self.mult,
                                         self.n_events, self.out, self.counts,
                                         self.sops, self.pool_ops))


def _analog_head(snn: SpikingNetwork, program: EventProgram, x: np.ndarray, threads: int):
    """The analog layers' values for ``x`` (computed once, by the same NumPy code as the
    dense engine), channels-last, and where each goes in an image's float workspace."""
    analog, layout = _analog_space(program, len(x), x.dtype)
    _fill_analog_head(snn, program, x, analog, threads)
    return analog, layout


def _analog_space(program: EventProgram, batch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """An uninitialised (batch, columns) array for the analog layers' values and their
    layout: (start in an image's float workspace, size, first column) per layer."""
    sizes = [size for _, _, size in program.analog]
    if program.encoding != "analog" or not sizes:
        return np.zeros((batch, 1), dtype), np.zeros((0, 3), np.int64)
    layout = np.array([(start, size, offset) for (_, start, size), offset
                       in zip(program.analog, np.cumsum([0] + sizes[:-1]))], np.int64)
    return np.empty((batch, sum(sizes)), dtype), layout


def _fill_analog_head(snn: SpikingNetwork, program: EventProgram, x: np.ndarray,
                      analog: np.ndarray, threads: int = 1) -> None:
    """Write the analog layers' values for images ``x`` into their rows ``analog``
    (:func:`_analog_space`), each layer copied channels-last into its columns."""
    if program.encoding != "analog" or not program.analog:
        return
    values = analog_head(snn.network, program.classes, x, threads)
    offset = 0
    for name, _, size in program.analog:
        channels_last(values[name], out=analog[:, offset:offset + size])
        offset += size


def _next_block(block: int, seconds: float, remaining: int) -> int:
    """Steps for the next call so that it takes about BLOCK_SECONDS."""
    scaled = block * BLOCK_SECONDS / max(seconds, 1e-6)
    return int(max(1, min(remaining, BLOCK_GROWTH * block, BLOCK_STEPS, scaled)))


def run_chunk(snn: SpikingNetwork, program: EventProgram, x: np.ndarray, first_image: int, *,
              T: int, checkpoints: np.ndarray, seed: int, workspace: Workspace,
              sops: np.ndarray, pool_ops: np.ndarray, threads: int = 1,
              on_steps: Callable[[int], None] | None = None):
    """Simulate ``x`` (B, *input_shape) for T steps; ``on_steps(n)`` is called as each block
    of n steps completes. SOPs and pooling operations of the chunk are added to ``sops``
    (sop layers, T) and ``pool_ops`` (pool layers, T). ``threads`` threads of the process-wide
    pool (:func:`evsim.threads.on_pool`) simulate disjoint groups of images at once,
    :data:`GROUPS_PER_THREAD` groups per thread, each thread taking the next group not yet
    taken, so that a faster core does more of them. Returns per-image outputs (B, K, readout
    size) and spike counts (B, neurons), as views into ``workspace``."""
    batch = len(x)
    analog, layout = _analog_space(program, batch, x.dtype)
    rate_input = (x.reshape(batch, -1).astype(np.float64) if program.encoding == "rate"
                  else np.zeros((batch, 1)))
    rows = workspace.rows(batch)
    n_groups = max(1, min(batch, 1 if threads == 1 else GROUPS_PER_THREAD * threads))
    bounds = np.linspace(0, batch, n_groups + 1).astype(int)
    groups = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    stop = np.zeros(1, np.uint8)
    paths = compiled_paths(program)

    def advance(lo: int, hi: int, step: int, last: int) -> None:
        if step == 1:  # each group its own images' analog layers: no serial phase
            _fill_analog_head(snn, program, x[lo:hi], analog[lo:hi])
        run_steps(program.ops, program.iparams, program.fparams, program.f64params,
                  rate_input[lo:hi], analog[lo:hi], layout, step, last, checkpoints,
                  program.event_offsets, seed, first_image + lo, program.readout_offset,
                  program.readout_size, program.binary, *(a[lo:hi] for a in rows), stop,
                  *paths)

    step, block = 1, 1
    while step <= T:
        last = min(T, step + block - 1)
        started = time.perf_counter()
        calls = on_pool(lambda lo, hi, s=step, e=last: advance(lo, hi, s, e), groups, threads)
        try:
            for done in calls:
                done.result()
        except BaseException:  # Ctrl-C: the kernels stop at their next step
            stop[0] = 1
            wait(calls)
            raise
        n = last - step + 1
        sops[:, step - 1:last] += rows[-2][:, :len(sops), :n].sum(axis=0)
        pool_ops[:, step - 1:last] += rows[-1][:, :len(pool_ops), :n].sum(axis=0)
        if on_steps is not None:
            on_steps(n)
        block = _next_block(n, time.perf_counter() - started, T - last)
        step = last + 1
    return rows[-4], rows[-3]


class EventRunner:
    """The event engine as a runner (:mod:`evsim.engines`): the program compiled for
    the lowered network once, the images' workspaces allocated once and reused by every
    chunk, the chunk's results filed in the public, channel-first layout."""

    def __init__(self, setup: EngineSetup):
        time, options = setup.time, setup.options
        self.setup = setup
        self.program = compiled(time.snn, options.encoding, options.dtype, time.window,
                                time.binary)
        self.workspace = Workspace(self.program, setup.capacity, len(time.engine_checkpoints),
                                   borrow(self, "event"))
        announce_compile(self.program)

    def run_chunk(self, x: np.ndarray, first_image: int,
                  on_steps: Callable[[int], None] | None = None) -> ChunkResult:
        """Simulate ``x`` (B, *input_shape), ``x[0]`` being image ``first_image``."""
        setup, program = self.setup, self.program
        time, net, steps = setup.time, setup.time.snn.network, setup.time.steps_simulated
        sops = np.zeros((len(program.sop_layers), steps), np.int64)
        pool_ops = np.zeros((len(program.pool_layers), steps), np.int64)
        out, counts = run_chunk(time.snn, program, x, first_image, T=steps,
                                checkpoints=time.engine_checkpoints, seed=setup.options.seed,
                                workspace=self.workspace, sops=sops, pool_ops=pool_ops,
                                threads=setup.threads, on_steps=on_steps)
        spike_counts, negative = {}, {}
        for name, offset, size, shape, negatives in program.neuron_layers:
            spike_counts[name] = _counts(counts[:, offset:offset + size], shape,
                                         setup.options.per_image_counts)
            negative[name] = int(counts[:, negatives].sum())
        out = _channels_first(out.reshape(-1, program.readout_size), net.output_shape)
        outputs = out.copy().reshape((len(x), len(time.engine_checkpoints)) + net.output_shape)
        return ChunkResult(outputs.swapaxes(0, 1), spike_counts, negative,
                           dict(zip(program.sop_layers, sops)),
                           dict(zip(program.pool_layers, pool_ops)),
                           pool_spike_counts=self.pool_spike_counts(len(x)))

    def pool_spike_counts(self, batch: int) -> dict[str, np.ndarray]:
        """Each spiking max pooling's output spikes over the run, channel first, per image or
        summed (none in the ilif scheme, whose events are codes)."""
        if self.program.binary:
            return {}
        state, per_image = self.workspace.state[:batch], self.setup.options.per_image_counts
        return {name: _counts(state[:, offset:offset + int(np.prod(shape))], shape, per_image)
                for name, offset, shape in self.program.pool_outputs}


def _counts(flat: np.ndarray, shape, per_image: bool) -> np.ndarray:
    """A layer's counts from the workspace's (B, H*W*C) channels-last rows, channel first:
    per image (B, *shape), or summed over the images (*shape) before the transposition,
    along contiguous rows. A new array either way: the workspace is reused by the next
    chunk."""
    if per_image:
        return np.array(_channels_first(flat, shape), np.int64, order="C")
    return np.ascontiguousarray(_channels_first(flat.sum(axis=0, keepdims=True), shape)[0],
                                np.int64)


def _channels_first(flat: np.ndarray, shape) -> np.ndarray:
    """(N, H*W*C) channels-last -> (N, C, H, W); 1-D layers unchanged."""
    if len(shape) != 3:
        return flat.reshape((len(flat),) + tuple(shape))
    c, h, w = shape
    return flat.reshape(len(flat), h, w, c).transpose(0, 3, 1, 2)


def compiled_paths(program: EventProgram) -> tuple:
    """The optional kernels :func:`~evsim.simulate.kernels.run_steps` is called (and so
    compiled) with for ``program``: those it uses, or all of them where the environment
    variable :data:`KERNELS_VARIABLE` says ``all``."""
    return kernel_paths(program.ops, every=_every_kernel())


def _every_kernel() -> bool:
    """Whether :data:`KERNELS_VARIABLE` asks for every optional kernel (checked)."""
    choice = os.environ.get(KERNELS_VARIABLE, "needed")
    if choice not in ("needed", "all"):
        raise EvsimValueError(f"the environment variable {KERNELS_VARIABLE} must be 'needed' "
                              f"or 'all', not {choice!r}")
    return choice == "all"


def announce_compile(program: EventProgram) -> None:
    """Say so on stderr before the kernels are compiled for ``program``'s kind on this
    machine (a silent pause of several seconds otherwise): each combination of optional
    kernels (:func:`~evsim.simulate.kernels.kernel_paths`) compiles once; loading one
    from Numba's cache is quiet."""
    every = _every_kernel()
    paths = kernel_paths(program.ops, every=every)
    wanted = [numba.typeof(path) for path in paths]
    if ready(run_steps, lambda signature: list(signature[-len(wanted):]) == wanted):
        return
    if every:
        announce("the event engine", ALL_KERNELS_COMPILE_SECONDS,
                 [f"every optional kernel ({KERNELS_VARIABLE}=all)"], others=False)
        return
    used = [part for part, path in zip(_KERNEL_PARTS, paths) if path is not None]
    announce("the event engine", COMPILE_SECONDS, used or ["plain IF neurons"])


#: What each optional kernel (:func:`~evsim.simulate.kernels.kernel_paths`) is, in words.
_KERNEL_PARTS = ("gate max pooling", "LIPooling max pooling",
                 "the general neuron rule (bursts, SpiCalib or windows)",
                 "rate-coded input", "depthwise convolutions")


__all__ = ["EventRunner", "run_chunk", "Workspace", "announce_compile", "compiled_paths",
           "BLOCK_SECONDS", "KERNELS_VARIABLE"]
