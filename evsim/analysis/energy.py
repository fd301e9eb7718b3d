"""Operation counts and energy per image: the ANN's MACs against the SNN's exact SOPs.

Counting rules (``docs/energy.md`` explains why):

* **ANN**: one MAC per existing synapse of every Dense/Conv2d (border-aware,
  :func:`evsim.fanout.path_fanout`), one add per element per extra input of
  an Add. Pooling, activations and the (folded) BatchNorm are not counted.
* **SNN**: the synaptic operations the simulator counted
  (:attr:`SimResult.sops`). A SOP is one accumulate caused by one spike at
  one existing synapse, so SOPs *already include the firing rate*: their
  energy is ``SOPs × E_AC`` and is never multiplied by a rate again.
  Max-pool accumulator updates (``pool_ops``) are charged as adds; neuron
  updates (neurons × T) are reported and charged at ``e_update_pj``
  (0 in the presets, as in most conversion papers).
* **Analog input**: the first layers are computed from the image, with
  MACs. ``convention="reinject"`` computes them once per image and adds
  their output current into the receiving neurons every step (MACs +
  T·N adds); ``convention="recompute"`` recomputes them every step (T·MACs).
  With rate-coded input there is no analog head and the convention does
  not matter.

All counts and energies in an :class:`EnergyReport` are per image (batch
averages); energies are in picojoules. These tables charge arithmetic only; the
report's ``memory`` costs the same run with memory accesses and addressing
(:mod:`evsim.analysis.energy_memory`, Lemaire et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..signals import ANALOG, plan
from ..result import SimResult
from ..spiking import WINDOWED, SpikingNetwork
from ..errors import EvsimValueError
from ..validate import check_steps
from .counts import CONVENTIONS, ann_adds, ann_macs, energy_unit
from .energy_memory import (LEMAIRE_45NM, MemoryEnergyReport, MemoryEnergyTable,
                            memory_energy_report)


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation, in picojoules.

    ``e_mac_pj``: one multiply-accumulate; ``e_ac_pj``: one accumulate (add);
    ``e_update_pj``: one neuron update (one neuron, one step), 0 by default.
    """

    name: str
    e_mac_pj: float
    e_ac_pj: float
    e_update_pj: float = 0.0

    def __post_init__(self):
        for key in ("e_mac_pj", "e_ac_pj", "e_update_pj"):
            value = float(getattr(self, key))
            if not (np.isfinite(value) and value >= 0):
                raise EvsimValueError(f"EnergyTable '{self.name}': {key} must be finite and >= 0, "
                                      f"got {getattr(self, key)!r}")
            object.__setattr__(self, key, value)

    def describe(self) -> str:
        """One line: the table's name and energies."""
        text = f"{self.name}: E_MAC = {self.e_mac_pj:g} pJ, E_AC = {self.e_ac_pj:g} pJ"
        return text + (f", E_update = {self.e_update_pj:g} pJ" if self.e_update_pj else "")


#: Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm).
FLOAT32_45NM = EnergyTable("float32, 45 nm (Horowitz 2014)", 4.6, 0.9)
FLOAT16_45NM = EnergyTable("float16, 45 nm (Horowitz 2014)", 1.5, 0.4)
INT8_45NM = EnergyTable("int8, 45 nm (Horowitz 2014)", 0.23, 0.03)

#: The presets by short name (as the ``evsim`` command takes them).
ENERGY_TABLES: dict[str, EnergyTable] = {"float32": FLOAT32_45NM, "float16": FLOAT16_45NM,
                                         "int8": INT8_45NM}


def energy_table(table: str | EnergyTable) -> EnergyTable:
    """A preset by name (``"float32"``, ``"float16"``, ``"int8"``), or ``table`` itself."""
    if isinstance(table, EnergyTable):
        return table
    if table not in ENERGY_TABLES:
        raise EvsimValueError(
            f"unknown energy table {table!r}; presets are {sorted(ENERGY_TABLES)} "
            "(or pass an EnergyTable)")
    return ENERGY_TABLES[table]


@dataclass(frozen=True)
class EnergyRow:
    """Operations and energy of one layer, per image.

    ``ann_macs``/``ann_adds``: the ANN's operations at this layer.
    ``snn_macs``: MACs of the analog head (per the convention);
    ``snn_sops``: exact synaptic operations received by this layer;
    ``snn_adds``: re-injections of the analog head's current (``reinject``),
    charged to the analog layer that produces the current;
    ``pool_ops``: max-pool accumulator updates; ``neuron_updates``: neurons × steps.
    Energies in picojoules: ``ann_pj``; the SNN's split into ``snn_mac_pj``
    (MACs), ``snn_ac_pj`` (SOPs, adds and pool updates) and ``snn_update_pj``.
    """

    layer: str
    kind: str
    ann_macs: int
    ann_adds: int
    snn_macs: float
    snn_sops: float
    snn_adds: float
    pool_ops: float
    neuron_updates: int
    ann_pj: float
    snn_mac_pj: float
    snn_ac_pj: float
    snn_update_pj: float

    @property
    def snn_pj(self) -> float:
        """SNN energy of this layer, picojoules."""
        return self.snn_mac_pj + self.snn_ac_pj + self.snn_update_pj


@dataclass(frozen=True)
class EnergyReport:
    """ANN versus SNN operations and energy per image, layer by layer.

    ``rows`` in topological order; ``steps``: time steps the SNN figures
    cover (in the temporal scheme: the window W); ``convention``: how the
    analog head is charged; ``n_images``: how many images the SNN counts are
    averaged over; ``encoding`` and ``time_scheme``: how the run was made;
    ``latency``: steps until its output is complete; ``memory``: the same run costed
    with memory and addressing (:mod:`evsim.analysis.energy_memory`, Lemaire et al.
    2022), shown beside the compute-only figure, or None.
    """

    rows: tuple[EnergyRow, ...]
    table: EnergyTable
    convention: str
    steps: int
    n_images: int
    encoding: str
    time_scheme: str = "synchronous"
    latency: int = 0
    memory: MemoryEnergyReport | None = None

    @property
    def ann_pj(self) -> float:
        """ANN energy per image, picojoules."""
        return float(sum(r.ann_pj for r in self.rows))

    @property
    def snn_pj(self) -> float:
        """SNN energy per image over ``steps`` steps, picojoules."""
        return float(sum(r.snn_pj for r in self.rows))

    @property
    def ann_macs(self) -> int:
        """ANN MACs per image (all Dense/Conv2d layers)."""
        return int(sum(r.ann_macs for r in self.rows))

    @property
    def snn_sops(self) -> float:
        """SNN synaptic operations per image over ``steps`` steps."""
        return float(sum(r.snn_sops for r in self.rows))

    @property
    def ratio(self) -> float:
        """SNN energy / ANN energy (below 1: the SNN uses less)."""
        return self.snn_pj / self.ann_pj if self.ann_pj else float("inf")

    def conventions(self) -> list[str]:
        """The counting conventions, one sentence each (also printed by :meth:`to_markdown`)."""
        if self.encoding == "rate":
            head = "rate-coded input, so no analog head: every layer receives spikes"
        elif self.convention == "reinject":
            head = ("analog head computed once per image, its output current re-injected every "
                    "step (MACs + T·N adds)")
        else:
            head = "analog head recomputed every step (T·MACs)"
        updates = (f"charged at {self.table.e_update_pj:g} pJ each" if self.table.e_update_pj
                   else "counted but not charged")
        run = (f"the SNN runs T = {self.steps} steps" if self.time_scheme not in WINDOWED else
               f"temporal scheme: T = {self.steps} is the window, the output is complete after "
               f"{self.latency} steps, and each neuron integrates one window and fires in the "
               "next (counted as T updates)")
        return [
            f"Energy table: {self.table.describe()}.",
            f"Per image, averaged over {self.n_images} image(s); {run}.",
            "ANN: one MAC per existing synapse of each Dense/Conv2d (border-aware), one add per "
            "element per extra Add input; pooling and activations are not counted.",
            "SNN: exact SOPs counted by the simulator, each charged E_AC; SOPs already include "
            "the firing rate, so no rate factor is applied.",
            f"SNN input: {head}.",
            f"SNN: max-pool accumulator updates are charged as adds; neuron updates "
            f"(neurons × T) are {updates}.",
        ]

    def to_markdown(self) -> str:
        """The conventions, a per-layer table and the totals, as Markdown."""
        unit, scale = energy_unit(max(self.ann_pj, self.snn_pj))
        total = {key: sum(getattr(r, key) for r in self.rows)
                 for key in ("ann_macs", "ann_adds", "snn_macs", "snn_adds", "pool_ops",
                             "neuron_updates")}
        lines = ["Conventions:", ""] + [f"- {c}" for c in self.conventions()] + [
            "", f"| layer | kind | ANN ops | SNN MACs | SNN SOPs | SNN adds | pool ops | "
            f"neuron updates | ANN energy ({unit}) | SNN energy ({unit}) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            lines.append(f"| {r.layer} | {r.kind} | {_n(r.ann_macs + r.ann_adds)} | "
                         f"{_n(r.snn_macs)} | {_n(r.snn_sops)} | {_n(r.snn_adds)} | "
                         f"{_n(r.pool_ops)} | {_n(r.neuron_updates)} | {r.ann_pj / scale:.4g} | "
                         f"{r.snn_pj / scale:.4g} |")
        lines.append(f"| **total** | | {_n(total['ann_macs'] + total['ann_adds'])} | "
                     f"{_n(total['snn_macs'])} | {_n(self.snn_sops)} | {_n(total['snn_adds'])} | "
                     f"{_n(total['pool_ops'])} | {_n(total['neuron_updates'])} | "
                     f"**{self.ann_pj / scale:.4g}** | **{self.snn_pj / scale:.4g}** |")
        verdict = "less" if self.ratio < 1 else "more"
        lines += ["", f"SNN / ANN energy per image at T = {self.steps}: {self.ratio:.3g} "
                  f"(the SNN uses {verdict} energy than the ANN)."]
        if self.memory is not None:
            lines += ["", "With memory and addressing:", "", self.memory.to_markdown()]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready: conventions, totals and rows; energies in µJ per image (keys ending in
        ``_uj``), the table's energies per operation in pJ, counts per image."""
        counts = ("layer", "kind", "ann_macs", "ann_adds", "snn_macs", "snn_sops", "snn_adds",
                  "pool_ops", "neuron_updates")
        energies = ("ann_pj", "snn_mac_pj", "snn_ac_pj", "snn_update_pj", "snn_pj")
        return {"table": {"name": self.table.name, "e_mac_pj": self.table.e_mac_pj,
                          "e_ac_pj": self.table.e_ac_pj, "e_update_pj": self.table.e_update_pj},
                "convention": self.convention, "steps": self.steps, "n_images": self.n_images,
                "encoding": self.encoding, "time_scheme": self.time_scheme,
                "latency": self.latency, "conventions": self.conventions(),
                "ann_uj": self.ann_pj / 1e6, "snn_uj": self.snn_pj / 1e6, "ratio": self.ratio,
                "ann_macs": self.ann_macs, "snn_sops": self.snn_sops,
                "memory": None if self.memory is None else self.memory.as_dict(),
                "rows": [{**{key: getattr(r, key) for key in counts},
                          **{key[:-2] + "uj": getattr(r, key) / 1e6 for key in energies}}
                         for r in self.rows]}


def _n(value: float) -> str:
    """A count for a table: integers as is, averages with 4 significant digits."""
    return f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"


def energy_report(snn: SpikingNetwork, result: SimResult,
                  table: str | EnergyTable = FLOAT32_45NM, convention: str = "reinject",
                  steps: int | None = None,
                  memory: MemoryEnergyTable | None = LEMAIRE_45NM) -> EnergyReport:
    """Operations and energy per image of ``snn`` as simulated in ``result``, against its ANN.

    Parameters
    ----------
    snn:
        The spiking network that was simulated (its ``network`` is the ANN,
        BatchNorm folded).
    result:
        The simulation; its SOPs are used as counted. SOPs already include
        the firing rate (a silent layer has none): they are multiplied by
        E_AC only, never by a rate again.
    table:
        An :class:`EnergyTable` or a preset name (``"float32"``, ``"float16"``,
        ``"int8"``).
    convention:
        How the analog head is charged: ``"reinject"`` (computed once, then
        T·N adds) or ``"recompute"`` (T·MACs). See the module docstring.
    steps:
        Count the first ``steps`` steps only (default: all ``result.T``), e.g.
        the energy of stopping at an earlier checkpoint.
    memory:
        Also cost the run with memory and addressing, with these costs
        (:class:`~evsim.analysis.energy_memory.MemoryEnergyTable`, default
        Lemaire et al. 2022's): the report's ``memory``. None leaves it out. The
        report's own figures stay compute-only.

    Returns
    -------
    An :class:`EnergyReport` (per image; energies in pJ).
    """
    table = energy_table(table)
    if convention not in CONVENTIONS:
        raise EvsimValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    steps = result.T if steps is None else check_steps(steps, "steps")
    if not 1 <= steps <= result.T:
        raise EvsimValueError(f"steps must be an integer in [1, {result.T}], got {steps}")
    temporal = result.time_scheme in WINDOWED
    if temporal and steps != result.T:
        raise EvsimValueError(f"a temporal-scheme result counts whole windows; steps must be the "
                              f"window T = {result.T}, got {steps}")
    # sops/pool_ops hold one entry per step, or one per window in the temporal scheme.
    counted = 1 if temporal else steps
    network = snn.network
    if set(snn.neurons) != set(result.neurons):
        raise EvsimValueError(
            f"the result's spiking layers {sorted(result.neurons)} are not the "
            f"network's {sorted(snn.neurons)}; was it simulated from this network?")

    classes = plan(network, result.encoding).classes
    macs, adds = ann_macs(network), ann_adds(network)
    per_image = 1.0 / result.n_images
    rows = []
    for node in network:
        name, layer = node.name, node.layer
        head_macs = macs.get(name, 0) if classes[name] == ANALOG else 0
        # N: elements of an analog layer whose current feeds a layer that runs every step.
        feeds = sum(1 for c in network.consumers(name) if classes[c] != ANALOG)
        reinjected = (feeds * int(np.prod(network.shape(name))) * steps
                      if classes[name] == ANALOG and convention == "reinject" else 0)
        snn_macs = head_macs * (steps if convention == "recompute" else 1)
        sops = (float(result.sops[name][:counted].sum()) * per_image if name in result.sops
                else 0.0)
        pool = (float(result.pool_ops[name][:counted].sum()) * per_image
                if name in result.pool_ops else 0.0)
        updates = result.neurons.get(name, 0) * steps
        ann = (macs.get(name, 0), adds.get(name, 0))
        if not any((ann[0], ann[1], snn_macs, sops, reinjected, pool, updates,
                    name in result.sops)):
            continue
        rows.append(EnergyRow(
            layer=name, kind=type(layer).__name__, ann_macs=ann[0], ann_adds=ann[1],
            snn_macs=float(snn_macs), snn_sops=sops, snn_adds=float(reinjected), pool_ops=pool,
            neuron_updates=updates, ann_pj=ann[0] * table.e_mac_pj + ann[1] * table.e_ac_pj,
            snn_mac_pj=snn_macs * table.e_mac_pj,
            snn_ac_pj=(sops + reinjected + pool) * table.e_ac_pj,
            snn_update_pj=updates * table.e_update_pj))
    aware = (None if memory is None else
             memory_energy_report(snn, result, memory, convention, steps))
    return EnergyReport(tuple(rows), table, convention, steps, result.n_images, result.encoding,
                        result.time_scheme, result.latency, aware)


__all__ = ["EnergyTable", "FLOAT32_45NM", "FLOAT16_45NM", "INT8_45NM", "ENERGY_TABLES",
           "energy_table", "ann_macs", "ann_adds", "EnergyRow", "EnergyReport", "energy_report",
           "energy_unit", "CONVENTIONS"]
