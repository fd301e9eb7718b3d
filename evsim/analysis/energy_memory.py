"""Energy with memory and addressing: Lemaire et al. 2022's model on evsim's exact counts.

The compute-only figure (:mod:`evsim.analysis.energy`, Horowitz 2014) charges
arithmetic alone. E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J.
Courtois and B. Miramond, "An analytical estimation of spiking neural networks
energy efficiency", ICONIP 2022 (LNCS 13623, pp. 574-587,
doi:10.1007/978-3-031-30105-6_48) also charges every memory access and the
address arithmetic of an event-driven layer. Their equations estimate the
event counts from spike rates; evsim has them exactly, so each term here is a
count the simulator made times a cost. ``docs/energy.md`` lists every term with
its equation number; in short, per image, for a layer that receives events
(E input events, S synaptic operations, N neurons, T steps, θ output spikes):

* **synapse layer**: E reads of the input spike queue (Eq. 5), S weight reads
  (Eq. 7f/8f), S membrane reads and S writes (the event terms of Eq. 9/10 and
  14/15), S accumulates (Eq. 1.4/2.4), S address additions (Eq. 16.3/17.2) and,
  for a convolution, 2E address multiply-accumulates (Eq. 16.2); T·N bias reads
  (Eq. 7s) when it has a bias;
* **neuron layer**: T·N membrane reads and writes and T·N additions (the
  per-step terms of Eq. 9/10, 14/15 and 1.4/2.4), θ reset additions and θ
  writes to the output spike queue (Eq. 13);
* **analog head** (computed from the image, :mod:`evsim.analysis.energy`'s
  conventions): the ANN's terms (Eq. 1-4, 6, 11-12 and the dense addressing),
  once per image (``reinject``: then T·N reads of its stored current and T·N
  additions) or every step (``recompute``);
* **max pooling**: its accumulator updates, each a read, an add and a write.

Costs (:class:`MemoryEnergyTable`, :data:`LEMAIRE_45NM`): an add 0.1 pJ and a
multiply 3.1 pJ (Horowitz 2014, 45 nm, 32-bit integer), and one access to a
memory of M words of b bits ``13.2 + 1.09e-5 · M · b`` pJ (Lemaire et al.'s
linear fit to Horowitz's 45 nm SRAM figures). Spike queues hold
``fifo_words`` words.

The spike terms (E, θ) are exact for the whole run; at an earlier step t
(``steps=t``) they are apportioned by the share of the layer's synaptic
operations made by step t, which is exact for a dense layer's input.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .. import kinds
from .. import layers as L
from ..errors import EvsimValueError
from ..network import Network
from ..result import SimResult
from ..signals import ANALOG, plan
from ..spiking import WINDOWED, SpikingNetwork
from ..validate import check_steps
from .counts import CONVENTIONS, ann_adds, ann_macs, energy_unit

_COUNTS = ("input_reads", "output_writes", "weight_reads", "bias_reads", "potential_reads",
           "potential_writes", "adds", "macs", "address_adds", "address_macs")


@dataclass(frozen=True)
class MemoryEnergyTable:
    """Costs of Lemaire et al. 2022's model, in picojoules.

    ``e_add_pj``: one addition; ``e_mul_pj``: one multiplication (a MAC is
    both); one access to a memory of M words costs ``e_access_pj +
    e_access_per_bit_pj · M · word_bits``; ``fifo_words``: the words of each
    layer's input and output spike queues.
    """

    name: str
    e_add_pj: float = 0.1
    e_mul_pj: float = 3.1
    e_access_pj: float = 13.2
    e_access_per_bit_pj: float = 1.09e-5
    word_bits: int = 32
    fifo_words: int = 64

    def __post_init__(self):
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if isinstance(value, bool) or not (np.isfinite(float(value)) and value >= 0):
                raise EvsimValueError(f"MemoryEnergyTable '{self.name}': {f.name} must be a "
                                      f"finite number >= 0, got {value!r}")
        for key in ("word_bits", "fifo_words"):
            if int(getattr(self, key)) != getattr(self, key) or getattr(self, key) < 1:
                raise EvsimValueError(f"MemoryEnergyTable '{self.name}': {key} must be a "
                                      f"positive integer, got {getattr(self, key)!r}")

    def access_pj(self, words: int) -> float:
        """One read or write of a memory holding ``words`` words, picojoules."""
        return self.e_access_pj + self.e_access_per_bit_pj * words * self.word_bits

    def describe(self) -> str:
        """One line: the table's name and costs."""
        return (f"{self.name}: E_add = {self.e_add_pj:g} pJ, E_mul = {self.e_mul_pj:g} pJ, "
                f"memory access {self.e_access_pj:g} + {self.e_access_per_bit_pj:g}·M·"
                f"{self.word_bits} pJ (M words), spike queues of {self.fifo_words} words")


#: Lemaire et al. 2022's costs: 45 nm, 32-bit words (Horowitz 2014's add and multiply).
LEMAIRE_45NM = MemoryEnergyTable("Lemaire et al. 2022, 45 nm, 32-bit")


@dataclass(frozen=True)
class MemoryEnergyRow:
    """One layer's accesses and operations per image, and their energy in picojoules.

    ``input_reads``/``output_writes``: spike-queue (or activation memory) accesses;
    ``weight_reads``, ``bias_reads``, ``potential_reads``, ``potential_writes``:
    memory accesses; ``adds``, ``macs``: arithmetic; ``address_adds``,
    ``address_macs``: address arithmetic. ``memory_pj``, ``compute_pj``,
    ``addressing_pj``: their energies.
    """

    layer: str
    kind: str
    input_reads: float = 0.0
    output_writes: float = 0.0
    weight_reads: float = 0.0
    bias_reads: float = 0.0
    potential_reads: float = 0.0
    potential_writes: float = 0.0
    adds: float = 0.0
    macs: float = 0.0
    address_adds: float = 0.0
    address_macs: float = 0.0
    memory_pj: float = 0.0
    compute_pj: float = 0.0
    addressing_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        """The layer's energy, picojoules."""
        return self.memory_pj + self.compute_pj + self.addressing_pj


def _row(layer: str, kind: str, table: MemoryEnergyTable, sizes: dict[str, int],
         **counts: float) -> MemoryEnergyRow:
    """A row from its counts; ``sizes`` gives the words of the memory each access hits
    (``io``, ``weight``, ``bias``, ``potential``)."""
    c = {key: float(counts.get(key, 0.0)) for key in _COUNTS}
    access = {key: table.access_pj(words) for key, words in sizes.items()}
    memory = ((c["input_reads"] + c["output_writes"]) * access.get("io", 0.0)
              + c["weight_reads"] * access.get("weight", 0.0)
              + c["bias_reads"] * access.get("bias", 0.0)
              + (c["potential_reads"] + c["potential_writes"]) * access.get("potential", 0.0))
    mac = table.e_mul_pj + table.e_add_pj
    return MemoryEnergyRow(layer, kind, **c, memory_pj=memory,
                           compute_pj=c["adds"] * table.e_add_pj + c["macs"] * mac,
                           addressing_pj=(c["address_adds"] * table.e_add_pj
                                          + c["address_macs"] * mac))


@dataclass(frozen=True)
class MemoryEnergyReport:
    """Lemaire et al. 2022's energy per image, layer by layer, for the SNN and its ANN.

    ``snn_rows`` and ``ann_rows`` in topological order; ``steps`` the steps
    counted; ``n_images`` the images averaged over; ``convention`` how the analog
    head is charged.
    """

    snn_rows: tuple[MemoryEnergyRow, ...]
    ann_rows: tuple[MemoryEnergyRow, ...]
    table: MemoryEnergyTable
    convention: str
    steps: int
    n_images: int

    @property
    def snn_pj(self) -> float:
        """The SNN's energy per image, picojoules."""
        return float(sum(r.total_pj for r in self.snn_rows))

    @property
    def ann_pj(self) -> float:
        """The ANN's energy per image, picojoules."""
        return float(sum(r.total_pj for r in self.ann_rows))

    def parts_pj(self, side: str = "snn") -> dict[str, float]:
        """``{"memory", "compute", "addressing"}`` energies per image of ``side``
        (``"snn"`` or ``"ann"``), picojoules."""
        rows = self.snn_rows if side == "snn" else self.ann_rows
        return {part: float(sum(getattr(r, part + "_pj") for r in rows))
                for part in ("memory", "compute", "addressing")}

    @property
    def ratio(self) -> float:
        """SNN energy / ANN energy."""
        return self.snn_pj / self.ann_pj if self.ann_pj else float("inf")

    def to_markdown(self) -> str:
        """The per-layer table of the SNN's accesses and energies, and the totals."""
        unit, scale = energy_unit(max(self.snn_pj, self.ann_pj))
        lines = [f"Memory-aware energy (Lemaire et al. 2022): {self.table.describe()}; per "
                 f"image over {self.n_images} image(s), T = {self.steps}.", "",
                 "| layer | kind | queue reads | queue writes | weight reads | bias reads | "
                 f"membrane reads | membrane writes | adds | MACs | address ops | "
                 f"memory ({unit}) | compute ({unit}) | addressing ({unit}) |",
                 "|---|---|" + "---:|" * 12]
        for r in self.snn_rows:
            lines.append(f"| {r.layer} | {r.kind} | " + " | ".join(_n(getattr(r, k)) for k in (
                "input_reads", "output_writes", "weight_reads", "bias_reads", "potential_reads",
                "potential_writes", "adds", "macs")) + f" | {_n(r.address_adds + r.address_macs)}"
                f" | {r.memory_pj / scale:.4g} | {r.compute_pj / scale:.4g} | "
                f"{r.addressing_pj / scale:.4g} |")
        snn, ann = self.parts_pj("snn"), self.parts_pj("ann")
        lines += ["", f"SNN {self.snn_pj / scale:.4g} {unit} (memory {snn['memory'] / scale:.4g}, "
                  f"compute {snn['compute'] / scale:.4g}, addressing "
                  f"{snn['addressing'] / scale:.4g}); ANN {self.ann_pj / scale:.4g} {unit} "
                  f"(memory {ann['memory'] / scale:.4g}, compute {ann['compute'] / scale:.4g}, "
                  f"addressing {ann['addressing'] / scale:.4g}); SNN / ANN {self.ratio:.3g}."]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready: totals in µJ per image, the table, and the rows (counts per image,
        energies in µJ)."""
        def rows(side):
            return [{**{k: getattr(r, k) for k in ("layer", "kind") + _COUNTS},
                     **{k[:-2] + "uj": getattr(r, k) / 1e6
                        for k in ("memory_pj", "compute_pj", "addressing_pj")}} for r in side]
        return {"table": {f.name: getattr(self.table, f.name) for f in fields(self.table)},
                "convention": self.convention, "steps": self.steps, "n_images": self.n_images,
                "snn_uj": self.snn_pj / 1e6, "ann_uj": self.ann_pj / 1e6, "ratio": self.ratio,
                "snn_parts_uj": {k: v / 1e6 for k, v in self.parts_pj("snn").items()},
                "ann_parts_uj": {k: v / 1e6 for k, v in self.parts_pj("ann").items()},
                "snn_rows": rows(self.snn_rows), "ann_rows": rows(self.ann_rows)}


def _n(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"


def _dense_pass(network: Network, name: str, macs: int) -> dict[str, float]:
    """One ANN pass of a synapse layer (Lemaire et al. Eq. 1-4, 6, 11-12, dense addressing):
    the counts per image, with MACs border-aware."""
    layer = network[name].layer
    n_in = int(np.prod(network.shape(network[name].inputs[0])))
    n_out = int(np.prod(network.shape(name)))
    conv = isinstance(layer, (L.Conv2d, L.ConvTranspose2d))
    taps = int(np.prod(layer.weight.shape[2:])) if conv else 0
    return {"input_reads": macs if conv else n_in, "output_writes": n_out,
            "weight_reads": macs, "bias_reads": n_out if layer.bias is not None else 0,
            "macs": macs, "adds": n_out if layer.bias is not None else 0,
            "address_adds": (n_in + n_out + layer.weight.shape[0] * taps) if conv
            else n_in * n_out}


def _sizes(network: Network, name: str) -> dict[str, int]:
    """Words of the memories a synapse layer reads and writes."""
    layer = network[name].layer
    return {"io": int(np.prod(network.shape(network[name].inputs[0]))),
            "weight": int(layer.weight.size),
            "bias": int(layer.bias.size) if layer.bias is not None else 1,
            "potential": int(np.prod(network.shape(name)))}


def ann_memory_rows(network: Network, table: MemoryEnergyTable) -> tuple[MemoryEnergyRow, ...]:
    """The ANN's rows: every synapse layer's pass and every Add's reads, adds and writes."""
    rows, macs, adds = [], ann_macs(network), ann_adds(network)
    for node in network:
        if node.name in macs:
            sizes = _sizes(network, node.name)
            sizes["io"] = max(sizes["io"], sizes["potential"])
            rows.append(_row(node.name, type(node.layer).__name__, table, sizes,
                             **_dense_pass(network, node.name, macs[node.name])))
        elif node.name in adds:
            size = int(np.prod(network.shape(node.name)))
            rows.append(_row(node.name, "Add", table, {"io": size},
                             input_reads=adds[node.name] + size, output_writes=size,
                             adds=adds[node.name], address_adds=size))
    return tuple(rows)


def _sent(result: SimResult, layer: str) -> float:
    """Spikes ``layer`` sent per image over the whole run (net counts plus twice the
    negative spikes, which counted −1)."""
    return (float(np.sum(result.spike_counts[layer]))
            + 2 * result.negative_spikes.get(layer, 0)) / result.n_images


def _share(result: SimResult, layers: list[str], counted: int) -> float:
    """The share of ``layers``' synaptic operations made in the first ``counted`` entries
    (1 when they made none: a silent layer has nothing to apportion)."""
    total = sum(float(result.sops[name].sum()) for name in layers)
    if not total:
        return 1.0
    return sum(float(result.sops[name][:counted].sum()) for name in layers) / total


class _Counter:
    """The SNN's rows of one :func:`memory_energy_report` call."""

    def __init__(self, snn: SpikingNetwork, result: SimResult, table: MemoryEnergyTable,
                 convention: str, steps: int):
        self.network, self.result, self.table = snn.network, result, table
        self.convention, self.steps = convention, steps
        self.counted = 1 if result.time_scheme in WINDOWED else steps
        signal_plan = plan(snn.network, result.encoding)
        self.classes = signal_plan.classes
        self.paths = [p for p in signal_plan.paths if p.counts == "sops"]
        self.macs = ann_macs(snn.network)

    def per_image(self, counts: dict[str, np.ndarray], name: str) -> float:
        return float(counts[name][:self.counted].sum()) / self.result.n_images

    def input_events(self, name: str, synapses: float) -> float:
        """Events ``name`` received per image in the counted steps."""
        sent, unkept = 0.0, 0.0
        for path in (p for p in self.paths if p.layer == name):
            if path.source in self.result.spike_counts:
                sent += _sent(self.result, path.source)
            else:  # rate-coded input: its spikes are not kept; S / mean fan-out
                unkept += synapses / max(float(path.fanout.mean()), 1e-300)
        return sent * _share(self.result, [name], self.counted) + unkept

    def event_layer(self, name: str) -> MemoryEnergyRow:
        layer = self.network[name].layer
        s = self.per_image(self.result.sops, name)
        events = self.input_events(name, s)
        counts = dict(input_reads=events, potential_reads=s, potential_writes=s, adds=s,
                      address_adds=s)
        sizes = {"io": self.table.fifo_words, "potential": int(np.prod(self.network.shape(name)))}
        if kinds.role_of(layer) == kinds.SYNAPSE:
            sizes.update(weight=int(layer.weight.size),
                         bias=int(layer.bias.size) if layer.bias is not None else 1)
            counts["weight_reads"] = s
            if layer.bias is not None:
                counts["bias_reads"] = self.steps * sizes["potential"]
            if isinstance(layer, (L.Conv2d, L.ConvTranspose2d)):
                counts["address_macs"] = 2 * events
        return _row(name, type(layer).__name__, self.table, sizes, **counts)

    def analog_head(self, name: str) -> list[MemoryEnergyRow]:
        passes = self.steps if self.convention == "recompute" else 1
        counts = {k: v * passes for k, v in _dense_pass(self.network, name,
                                                        self.macs[name]).items()}
        sizes = _sizes(self.network, name)
        sizes["io"] = max(sizes["io"], sizes["potential"])
        kind = type(self.network[name].layer).__name__
        rows = [_row(name, f"{kind} (analog head)", self.table, sizes, **counts)]
        feeds = sum(1 for c in self.network.consumers(name) if self.classes[c] != ANALOG)
        if self.convention == "reinject" and feeds:
            injected = feeds * sizes["potential"] * self.steps
            rows.append(_row(name, "re-injected current", self.table,
                             {"io": sizes["potential"]}, input_reads=injected, adds=injected))
        return rows

    def neuron_layer(self, name: str) -> MemoryEnergyRow:
        n = self.result.neurons[name]
        readers = [p.layer for p in self.paths if p.source == name]
        spikes = _sent(self.result, name) * _share(self.result, sorted(set(readers)),
                                                   self.counted)
        updates = n * self.steps
        return _row(name, "IF neurons", self.table, {"io": self.table.fifo_words,
                                                    "potential": n},
                    potential_reads=updates, potential_writes=updates, adds=updates + spikes,
                    output_writes=spikes)

    def pooling(self, name: str) -> MemoryEnergyRow:
        updates = self.per_image(self.result.pool_ops, name)
        words = int(np.prod(self.network.shape(name)))
        return _row(name, "max pooling", self.table, {"potential": words},
                    potential_reads=updates, potential_writes=updates, adds=updates)

    def rows(self) -> tuple[MemoryEnergyRow, ...]:
        rows = []
        for node in self.network:
            name = node.name
            if self.classes[name] == ANALOG and name in self.macs:
                rows += self.analog_head(name)
            if name in self.result.sops:
                rows.append(self.event_layer(name))
            if name in self.result.pool_ops:
                rows.append(self.pooling(name))
            if name in self.result.neurons:
                rows.append(self.neuron_layer(name))
        return tuple(rows)


def memory_energy_report(snn: SpikingNetwork, result: SimResult,
                         table: MemoryEnergyTable = LEMAIRE_45NM,
                         convention: str = "reinject",
                         steps: int | None = None) -> MemoryEnergyReport:
    """Lemaire et al. 2022's memory-aware energy per image of ``snn`` as simulated in
    ``result``, and of its ANN, from the simulator's exact counts.

    Parameters
    ----------
    snn, result:
        The spiking network and its simulation (as for
        :func:`~evsim.analysis.energy_report`).
    table:
        The costs (:class:`MemoryEnergyTable`; default :data:`LEMAIRE_45NM`).
    convention:
        How the analog head is charged: ``"reinject"`` or ``"recompute"``.
    steps:
        Count the first ``steps`` steps only (default: all ``result.T``; a
        temporal-scheme result counts whole windows).

    Returns
    -------
    A :class:`MemoryEnergyReport` (per image; energies in pJ).
    """
    if not isinstance(table, MemoryEnergyTable):
        raise EvsimValueError(f"table must be a MemoryEnergyTable (e.g. LEMAIRE_45NM), got "
                              f"{type(table).__name__}")
    if convention not in CONVENTIONS:
        raise EvsimValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    steps = result.T if steps is None else check_steps(steps, "steps")
    if not 1 <= steps <= result.T:
        raise EvsimValueError(f"steps must be an integer in [1, {result.T}], got {steps}")
    if result.time_scheme in WINDOWED and steps != result.T:
        raise EvsimValueError(f"a temporal-scheme result counts whole windows; steps must be the "
                              f"window T = {result.T}, got {steps}")
    if set(snn.neurons) != set(result.neurons):
        raise EvsimValueError(
            f"the result's spiking layers {sorted(result.neurons)} are not the "
            f"network's {sorted(snn.neurons)}; was it simulated from this network?")
    counter = _Counter(snn, result, table, convention, int(steps))
    return MemoryEnergyReport(counter.rows(), ann_memory_rows(snn.network, table), table,
                              convention, int(steps), result.n_images)


__all__ = ["MemoryEnergyTable", "LEMAIRE_45NM", "MemoryEnergyRow", "MemoryEnergyReport",
           "memory_energy_report", "ann_memory_rows"]
