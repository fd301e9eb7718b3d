"""Where the event engine's time goes: per operation row of the program, per layer and per
part (synaptic scatter, neuron updates, spiking pooling, the analog first layer's MACs,
bookkeeping), and each layer's scatter beside the isolated kernel of ``bench_kernels.py`` at
the same shape and spike rate.

:func:`profile_steps` is the engine's step loop (``kernels.run_steps`` and ``_step``,
analog input only) with the processor's cycle counter read around every operation row (the
engine's own ``kernels._operation``); the benchmark checks that it computes the engine's
outputs and SOPs exactly.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

import evsim
from evsim.fanout import path_fanout
from evsim.simulate import kernels as K
from evsim.simulate.compile import compile_program
from evsim.simulate.event import Workspace, _analog_head, _channels_first, aligned_empty
from evsim.threads import one_blas_thread

PARTS = {K.OP_SCATTER: "scatter", K.OP_NEURON: "neuron updates", K.OP_MAXPOOL: "pooling",
         K.OP_FILL: "bookkeeping", K.OP_ADD: "bookkeeping", K.OP_COPYPERM: "bookkeeping"}


@intrinsic
def _cycles(typingctx):
    """The processor's cycle (time-stamp) counter."""
    def codegen(context, builder, signature, args):
        counter = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(counter, [])
    return types.int64(), codegen


@numba.njit
def profile_steps(ops, ip, fp, f64, analog, analog_layout, T, event_offsets, readout_offset,
                  readout_size, binary, buf, state, idx, mult, n_events, out, counts,
                  sops, pool_ops, cycles, events, gate, lipool, rich, depthwise):
    """run_steps for steps 1..T of every image, analog input; ``cycles[r]`` gains the cycles of
    operation row r (the engine's own ``kernels._operation``), ``cycles[-1]`` those of
    starting the images and reading the outputs; ``events[slot]`` the events of each slot
    over all steps and images; ``sops`` (B, sop layers) and ``pool_ops`` the totals; ``out``
    (B, readout) at T."""
    no_input = np.zeros(0, fp.dtype)  # analog input: no rate row reads the image
    for b in range(buf.shape[0]):
        start = _cycles()
        K._start_image(ops, fp, analog[b], analog_layout, buf[b], state[b], n_events[b],
                       out[b], counts[b])
        cycles[-1] += _cycles() - start
        for t in range(1, T + 1):
            for r in range(ops.shape[0]):
                start = _cycles()
                K._operation(ops[r], ip, fp, f64, no_input, t, event_offsets, np.uint64(0),
                             binary, buf[b], state[b], idx[b], mult[b], n_events[b], counts[b],
                             sops[b], pool_ops[b], gate, lipool, rich, None, depthwise)
                cycles[r] += _cycles() - start
            for slot in range(events.shape[0]):
                events[slot] += n_events[b, slot]
        start = _cycles()
        for i in range(readout_size):
            out[b, i] = buf[b, readout_offset + i]
        cycles[-1] += _cycles() - start


def row_names(program) -> list[str]:
    """The layer each operation row works for."""
    neurons = {layer[1]: layer[0] for layer in program.neuron_layers}
    fills = {op[K.SC_DST]: program.sop_layers[op[K.SC_SOP_SLOT]] for op in program.ops
             if op[K.CODE] == K.OP_SCATTER and op[K.SC_SOP_SLOT] >= 0}
    names = []
    for op in program.ops:
        code = op[K.CODE]
        if code == K.OP_SCATTER:
            names.append(program.sop_layers[op[K.SC_SOP_SLOT]] if op[K.SC_SOP_SLOT] >= 0
                         else "readout")
        elif code == K.OP_NEURON:
            names.append(neurons.get(op[K.NR_COUNTS], "?"))
        elif code == K.OP_MAXPOOL:
            names.append(program.pool_layers[op[K.MP_POOL_SLOT]])
        elif code == K.OP_FILL:
            names.append(fills.get(op[K.FILL_DST], "(other buffers)"))
        else:
            names.append("(copies and sums)")
    return names


def profile(snn: evsim.SpikingNetwork, images: np.ndarray, T: int):
    """Seconds per image of each operation row, of the analog head and of the rest, the
    profiled run's SOPs per layer, and each event slot's events per image-step over its
    capacity (its source's spike rate); checks the run against ``evsim.simulate``'s."""
    program = compile_program(snn, "analog", np.float32)
    x = images.astype(np.float32)
    with one_blas_thread():  # as evsim.simulate holds it
        _analog_head(snn, program, x[:1], 1)  # first calls: allocations, scratch arrays
        start = time.perf_counter()
        analog, layout = _analog_head(snn, program, x, 1)
        head_s = time.perf_counter() - start
    rows = Workspace(program, len(x), 1).rows(len(x))
    out = np.zeros((len(x), program.readout_size), program.dtype)
    sops = np.zeros((len(x), max(len(program.sop_layers), 1)), np.int64)
    pool_ops = np.zeros((len(x), max(len(program.pool_layers), 1)), np.int64)
    cycles = np.zeros(len(program.ops) + 1, np.int64)
    events = np.zeros(len(program.event_offsets) - 1, np.int64)
    args = (program.ops, program.iparams, program.fparams, program.f64params, analog, layout,
            T, program.event_offsets, program.readout_offset, program.readout_size,
            program.binary, rows[0], rows[1], rows[2], rows[3], rows[4], out, rows[6], sops,
            pool_ops)
    gate, lipool, rich, _, depthwise = K.kernel_paths(program.ops)
    paths = (gate, lipool, rich, depthwise)
    profile_steps(*args[:6], 1, *args[7:], np.zeros_like(cycles), np.zeros_like(events),
                  *paths)  # compile
    sops[:], pool_ops[:] = 0, 0
    start = time.perf_counter()
    profile_steps(*args, cycles, events, *paths)
    seconds = time.perf_counter() - start
    reference = evsim.simulate(snn, images, T=T, engine="event")
    mine = _channels_first(out, snn.network.output_shape).reshape(len(x), -1)  # a map's
    if not np.array_equal(reference.outputs[-1].reshape(len(x), -1), mine):  # channels first
        raise AssertionError("the profiled step loop does not compute the engine's outputs")
    per_layer = dict(zip(program.sop_layers, sops.sum(0) / len(x)))
    if any(per_layer[k] != v.sum() / len(x) for k, v in reference.sops.items()):
        raise AssertionError("the profiled step loop does not count the engine's SOPs")
    per_cycle = seconds / max(int(cycles.sum()), 1) / len(x)
    slot_rates = events / (len(x) * T * np.maximum(np.diff(program.event_offsets), 1))
    return (program, cycles[:-1] * per_cycle, cycles[-1] * per_cycle, head_s / len(x), per_layer,
            slot_rates)


@numba.njit
def _stream(buf, rows, T):
    """The neuron passes' bytes without their work: for each neuron row (current, v, size)
    and step, ``v += current`` (reads both, writes v), then the current refilled with a
    constant (the bias fill's write)."""
    for _ in range(T):
        for r in range(rows.shape[0]):
            current, v, n = rows[r, 0], rows[r, 1], rows[r, 2]
            potential, incoming = buf[v:v + n], buf[current:current + n]
            for i in range(n):
                potential[i] += incoming[i]
            for i in range(n):
                incoming[i] = 0.5


def neuron_floor(program, T: int, rounds: int) -> float:
    """Seconds per image of :func:`_stream` over the program's neuron buffers (one image's
    workspace, T steps; median of ``rounds``): the memory traffic of the neuron updates and
    their bias fills, as a floor for those two parts."""
    rows = np.array([(op[K.NR_CURRENT], op[K.NR_V], op[K.NR_SIZE]) for op in program.ops
                     if op[K.CODE] == K.OP_NEURON], np.int64)
    buf = Workspace(program, 1, 1).rows(1)[0][0]
    _stream(buf, rows, 1)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        _stream(buf, rows, T)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def kernel_rates(snn: evsim.SpikingNetwork, per_layer: dict, T: int, rounds: int) -> dict:
    """Per synaptic layer read straight from a spiking layer, or through one average pooling
    of one: (the spike rate of that spiking layer, the isolated kernel's GSOP/s on fresh
    random events at that rate and shape, the pooling folded in as the engine folds it,
    timed as ``bench_kernels.py`` does)."""
    import bench_kernels
    network = snn.network
    rng = np.random.default_rng(0)
    found = {}
    for name, sops in per_layer.items():
        node = network[name]
        source = node.inputs[0] if node.inputs else None
        through = []
        if source is not None and isinstance(network[source].layer, evsim.AvgPool2d) \
                and network[source].inputs[0] in snn.neurons:
            through, source = [network[source].layer], network[source].inputs[0]
        if (source not in snn.neurons and not isinstance(network[source].layer,
                                                         evsim.layers.MaxPool2d)) \
                or not isinstance(node.layer, (evsim.Conv2d, evsim.Dense)):
            continue  # fed through other averages or a Concat: no single isolated kernel
        shape = network.shape(source)
        chain = [(layer, shape) for layer in through]
        # the SOPs were every input to spike once
        macs = int(path_fanout(shape, chain, node.layer, network.shape(node.inputs[0])).sum())
        rate = sops / (T * macs)
        _, _, per_rate = bench_kernels.layer_cases(node.layer, shape, [rate], rng,
                                                   through=through)
        kernel_sops, case, _ = per_rate[0][1]["fresh"]
        for _ in range(rounds):
            case.time()
        found[name] = (rate, kernel_sops / case.median() / 1e9)
    return found


def row_kernel_rates(program, slot_rates: np.ndarray, layers, rounds: int) -> dict:
    """Per synaptic layer of ``layers`` (the paths :func:`kernel_rates` cannot rebuild as a
    one-layer network: a residual shortcut into an Add, a layer read through a Flatten, a
    Concat or an upsampling): (its first source's spike rate, the GSOP/s of the engine's own
    scatter rows of that layer, each on fresh random events at its source slot's measured
    rate, outside the network, timed as ``bench_kernels.py`` times a kernel)."""
    import bench_kernels
    rng = np.random.default_rng(0)
    buf = aligned_empty((program.float_size,), program.dtype)
    buf[:] = 0
    found = {}
    for op in program.ops:
        if op[K.CODE] != K.OP_SCATTER or op[K.SC_SOP_SLOT] < 0:
            continue
        layer = program.sop_layers[op[K.SC_SOP_SLOT]]
        if layer not in layers:
            continue
        slot = op[K.SC_SLOT]
        size = int(program.event_sizes[slot])
        idx, ptr = bench_kernels._event_sets(slot_rates[slot], (size,), rng,
                                             bench_kernels.MAX_SETS)
        mult = np.ones(idx.size, program.dtype)
        sets = len(ptr) - 1
        tables = (op.copy(), program.iparams, program.fparams, buf, idx, mult, ptr)
        per_set = bench_kernels._scatter_sets(*tables, 1) / sets  # compiles; SOPs/image-step
        repeats = max(1, int(bench_kernels.SOPS_PER_RUN // max(1.0, per_set * sets)))
        case = bench_kernels.Case(lambda a=tables + (repeats,): bench_kernels._scatter_sets(*a),
                                  repeats * sets)
        for _ in range(rounds):
            case.time()
        rate, sops, seconds = found.get(layer, (slot_rates[slot], 0.0, 0.0))
        found[layer] = (rate, sops + per_set, seconds + case.median())
    return {layer: (rate, sops / seconds / 1e9) for layer, (rate, sops, seconds) in found.items()}
