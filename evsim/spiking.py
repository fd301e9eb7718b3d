"""The converted spiking network: the ANN graph plus a neuron spec per activation.

Semantics (``docs/conventions.md``): each activation layer of the graph
becomes a layer of integrate-and-fire neurons whose spikes carry amplitude
θ (the layer's threshold) downstream; every other layer acts on those
values exactly as in the ANN. The output layer never spikes: its values are
summed over time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from .errors import EvsimTypeError, EvsimValueError
from .layers import Shape
from .network import Network

#: The largest burst Γ: more spikes per neuron per step than this is an analog value, and
#: both engines do work proportional to Γ per step.
BURST_MAX = 64
RESETS = ("subtract", "zero")
MAX_POOLS = ("lipooling", "gate")
TIME_SCHEMES = ("synchronous", "temporal", "ilif")
#: Schemes that simulate whole windows (T is the window; one checkpoint).
WINDOWED = ("temporal", "ilif")


def _parameter(value, what: str) -> np.ndarray:
    source = np.asarray(value)
    if source.dtype.kind not in "fiub":
        raise EvsimTypeError(f"{what} must be real numbers, got dtype {source.dtype}")
    array = np.array(source, dtype=np.float64 if source.dtype == np.float64 else np.float32)
    if not np.all(np.isfinite(array)):
        raise EvsimValueError(f"{what} contains NaN or infinite values")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class NeuronSpec:
    """Integrate-and-fire neurons of one layer.

    Per step ``m = v + I``; the neuron emits ``s = min(Γ, #{k ≥ 1 : m ≥ k θ})``
    spikes (``s ∈ {0, 1}`` for Γ = 1) and resets to ``v = m − s θ``
    (``reset="subtract"``) or to ``v = 0`` when it fired (``reset="zero"``).
    A signed neuron (``negative_threshold`` θ⁻ given) also emits
    ``s = −min(Γ, #{k ≥ 1 : m ≤ −k θ⁻})`` negative spikes and resets to ``v = m + |s| θ⁻``;
    every spike, either sign, carries θ (methods.md §5b).

    Attributes
    ----------
    threshold:
        θ > 0; a scalar, a per-channel array ``(C, 1, 1)`` / ``(N,)``, or one
        value per neuron, broadcastable to the layer's shape. Same units as
        the ANN activation.
    v_init:
        Absolute initial membrane potential v(0), broadcastable likewise.
    reset:
        ``"subtract"`` or ``"zero"``.
    burst:
        Γ, the most spikes a neuron emits in one step (1 = plain IF).
    allowance:
        SpiCalib's allowance A in steps: a neuron silent for longer than its
        mean inter-spike interval plus A emits negative spikes until its net
        count is 0 (methods.md §3). 0 turns calibration off.
    negative_threshold:
        θ⁻ > 0 of signed neurons (broadcastable like θ), or None for neurons that never
        fire below 0. θ⁻ = θ / α gives LeakyReLU with slope α; θ⁻ = θ the identity.

    This is what conversion produces and :func:`evsim.save` stores. The engines read it
    through their own per-run forms: :class:`evsim.neuron.IFParameters` (θ cast to the
    simulation dtype, the reset as a flag) in the dense engine, compiled arrays in the
    event engine.
    """

    threshold: np.ndarray
    v_init: np.ndarray = field(default_factory=lambda: np.zeros((), np.float32))
    reset: str = "subtract"
    burst: int = 1
    allowance: float = 0.0
    negative_threshold: np.ndarray | None = None

    def __post_init__(self):
        threshold = _parameter(self.threshold, "threshold")
        if np.any(threshold <= 0):
            raise EvsimValueError(f"thresholds must be positive, got min {threshold.min()}")
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "v_init", _parameter(self.v_init, "v_init"))
        if self.reset not in RESETS:
            raise EvsimValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if (isinstance(self.burst, (bool, np.bool_)) or not isinstance(self.burst, Integral)
                or not 1 <= self.burst <= BURST_MAX):
            raise EvsimValueError(f"burst (Γ) must be an integer in 1..{BURST_MAX}, got "
                                  f"{self.burst!r}")
        object.__setattr__(self, "burst", int(self.burst))
        allowance = float(self.allowance)
        if not (allowance >= 0 and np.isfinite(allowance)):
            raise EvsimValueError(f"allowance (SpiCalib's A) must be >= 0, got {self.allowance}")
        object.__setattr__(self, "allowance", allowance)
        self._check_negative_threshold()

    def _check_negative_threshold(self) -> None:
        """θ⁻ stored like θ, positive; SpiCalib's calibration spikes and signed spikes do
        not mix (both would write the same net count)."""
        if self.negative_threshold is None:
            return
        negative = _parameter(self.negative_threshold, "negative_threshold")
        if np.any(negative <= 0):
            raise EvsimValueError(f"negative thresholds (θ⁻) must be positive, got min "
                                  f"{negative.min()}")
        if self.allowance > 0:
            raise EvsimValueError(f"signed neurons (negative_threshold) cannot take SpiCalib "
                                  f"(allowance {self.allowance} > 0); set allowance 0")
        object.__setattr__(self, "negative_threshold", negative)

    @property
    def signed(self) -> bool:
        """Whether the neurons also fire negative spikes (a negative threshold is set)."""
        return self.negative_threshold is not None

    def check_shape(self, layer: str, shape: Shape) -> None:
        """Raise ValueError naming ``layer`` unless the arrays broadcast to ``shape``."""
        for name in ("threshold", "v_init") + (("negative_threshold",) if self.signed else ()):
            array = getattr(self, name)
            try:
                np.broadcast_shapes(array.shape, shape)
                ok = np.broadcast_shapes(array.shape, shape) == tuple(shape)
            except ValueError:
                ok = False
            if not ok:
                raise EvsimValueError(f"layer '{layer}': {name} of shape {array.shape} does not "
                                      f"broadcast to the layer's shape {tuple(shape)}")

    def attributes(self) -> dict:
        return {"reset": self.reset, "burst": self.burst, "allowance": self.allowance}

    def equals(self, other: NeuronSpec) -> bool:
        if self.signed != other.signed:
            return False
        keys = ("threshold", "v_init") + (("negative_threshold",) if self.signed else ())
        return (self.attributes() == other.attributes()
                and all(getattr(self, k).dtype == getattr(other, k).dtype
                        and np.array_equal(getattr(self, k), getattr(other, k))
                        for k in keys))


@dataclass(frozen=True, eq=False)
class SpikingNetwork:
    """A converted network, ready to simulate with :func:`evsim.simulate`.

    Attributes
    ----------
    network:
        The ANN graph (BatchNorm folded), whose activation layers are spiking.
    neurons:
        One :class:`NeuronSpec` per activation layer name.
    max_pool:
        Spiking max pooling: ``"lipooling"`` (exact, default) or ``"gate"``
        (the spike-count gate baseline).
    time_scheme:
        ``"synchronous"``: layers update in order within each step, no delay.
        ``"temporal"``: temporal separation; T is the window length
        (:mod:`evsim.timescheme`). ``"ilif"``: temporal separation with
        inverse-leaky binary firing, T = K bits per window.
    method:
        The conversion preset that produced it (informational).
    options:
        The conversion options used (JSON-serialisable, informational).
    """

    network: Network
    neurons: Mapping[str, NeuronSpec]
    max_pool: str = "lipooling"
    time_scheme: str = "synchronous"
    method: str = "custom"
    options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        neurons = dict(self.neurons)
        expected = set(self.network.activations)
        if set(neurons) != expected:
            missing, extra = expected - set(neurons), set(neurons) - expected
            raise EvsimValueError("neuron specs must match the activation layers exactly"
                                  + (f"; missing {sorted(missing)}" if missing else "")
                                  + (f"; not activations {sorted(extra)}" if extra else ""))
        for name, spec in neurons.items():
            spec.check_shape(name, self.network.shape(name))
        if self.max_pool not in MAX_POOLS:
            raise EvsimValueError(f"max_pool must be one of {MAX_POOLS}, got {self.max_pool!r}")
        if self.time_scheme not in TIME_SCHEMES:
            raise EvsimValueError(f"time_scheme must be one of {TIME_SCHEMES}, "
                                  f"got {self.time_scheme!r}")
        object.__setattr__(self, "neurons", neurons)
        if self.time_scheme in WINDOWED:
            check_temporal(self)
        object.__setattr__(self, "options", dict(self.options))

    def threshold(self, layer: str) -> np.ndarray:
        """θ of ``layer`` broadcast to its full per-image shape."""
        return np.broadcast_to(self.neurons[layer].threshold, self.network.shape(layer))

    def equals(self, other: SpikingNetwork) -> bool:
        """True when both are identical, parameters bit for bit."""
        return (isinstance(other, SpikingNetwork) and self.network.equals(other.network)
                and self.neurons.keys() == other.neurons.keys()
                and all(self.neurons[k].equals(other.neurons[k]) for k in self.neurons)
                and (self.max_pool, self.time_scheme, self.method)
                == (other.max_pool, other.time_scheme, other.method)
                and self.options == other.options)

    def summary(self) -> str:
        """The graph's summary followed by one line per spiking layer."""
        lines = [self.network.summary(), "", f"method {self.method}, max pool {self.max_pool}, "
                 f"time scheme {self.time_scheme}"]
        for name, spec in self.neurons.items():
            th = spec.threshold
            theta = f"{th:.4g}" if th.ndim == 0 else f"{th.min():.4g}..{th.max():.4g}"
            lines.append(f"  {name}: θ {theta}, v0 {float(np.mean(spec.v_init)):.4g} (mean), "
                         f"reset {spec.reset}, Γ {spec.burst}"
                         + (f", signed (θ⁻ min {float(spec.negative_threshold.min()):.4g})"
                            if spec.signed else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"SpikingNetwork({len(self.neurons)} spiking layers, method '{self.method}', "
                f"{self.network!r})")


def check_temporal(snn: SpikingNetwork) -> None:
    """Raise ValueError naming the layer if a neuron option has no meaning in windows."""
    for name, spec in snn.neurons.items():
        if spec.burst != 1:
            raise EvsimValueError(
                f"layer '{name}': the temporal scheme fires at most one spike per "
                f"step (up to W per window); burst must be 1, got {spec.burst}")
        if spec.allowance > 0:
            raise EvsimValueError(f"layer '{name}': SpiCalib needs the synchronous time scheme")


__all__ = ["NeuronSpec", "SpikingNetwork", "check_temporal", "RESETS", "MAX_POOLS",
           "TIME_SCHEMES", "WINDOWED", "BURST_MAX"]
