# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. One integrate-and-fire neuron
#
# Everything an ANN-to-SNN conversion does rests on one neuron: each step it adds its
# input current `I` to its membrane potential, fires when the potential reaches the
# threshold θ, and then subtracts θ (or drops to zero). Over T steps it fires N times,
# and its **rate θ·N/T** stands in for the ANN's ReLU activation. This tutorial builds
# that neuron in evsim and looks at what the rate can and cannot say:
#
# 1. a constant current becomes a *quantised* rate, in steps of θ/T;
# 2. reset by subtraction keeps the surplus above θ, reset to zero throws it away;
# 3. starting at v(0) = θ/2 turns rounding down into rounding to nearest;
# 4. a current above θ saturates: one spike per step is the most a neuron says.
#
# (`docs/concepts.md` explains the same in words.)

# %%
# %matplotlib inline
import warnings

import numpy as np
from matplotlib.figure import Figure

import evsim
from evsim import Dense, NeuronSpec, ReLU, SpikingNetwork, plot

# currents above 1 are meant here: they are not images
warnings.filterwarnings("ignore", category=evsim.UnscaledInputWarning)

# %% [markdown]
# ## One neuron as a network
#
# A network of one input, one ReLU and one readout, all weights 1: the ReLU becomes one
# IF neuron whose input current is the input value at every step ("analog" input).
# Many currents are simulated at once as a batch of one-pixel "images".

# %%
network = evsim.Network.sequential((1,), [Dense(np.eye(1)), ReLU(), Dense(np.eye(1))])
theta, T = 1.0, 16


def neuron(reset="subtract", v0=0.0):
    """The network with its one IF neuron: threshold θ, the given reset and v(0)."""
    spec = NeuronSpec(np.float64(theta), v_init=np.float64(v0), reset=reset)
    return SpikingNetwork(network, {"relu1": spec})


currents = np.linspace(0, 1.5, 301)[:, None]          # (images, 1): one current each


def rates(snn):
    """θ·N/T of the neuron for every current."""
    result = evsim.simulate(snn, currents, T=T, engine="dense", per_image_counts=True)
    return theta * result.spike_counts["relu1"].reshape(-1) / T


subtract = rates(neuron())
print("rates take", len(np.unique(subtract)), "values: multiples of θ/T =", theta / T)

# %% [markdown]
# ## Watching the membrane
#
# The dense engine records chosen neurons: their spikes, and their potential after
# *and before* each step's reset. Before the reset is the value compared with θ, so the
# crossing shows. A current of 0.3 θ fires on the steps where the potential reaches θ.

# %%
traced = evsim.simulate(neuron(), np.array([[0.3]]), T=T, engine="dense", record="relu1")
plot.membrane_trace(traced, neuron(), "relu1", 0)

# %% [markdown]
# ## Quantised rate, resets and v(0)
#
# The staircase: with subtraction and v(0) = 0 the neuron fires `floor(T·I/θ)` times —
# the rate rounds *down*. Starting at θ/2 it rounds to nearest. Reset to zero loses the
# part of the potential above θ at each spike, so the neuron fires less than it should
# (visibly for large currents). Above θ every variant saturates at one spike per step.

# %%
curves = {"subtract, v(0) = 0": subtract,
          "subtract, v(0) = θ/2": rates(neuron(v0=0.5)),
          "reset to zero, v(0) = 0": rates(neuron(reset="zero"))}
fig = Figure(figsize=(7.5, 4.5), layout="constrained")
ax = fig.add_subplot()
ax.plot(currents[:, 0], np.clip(currents[:, 0], 0, theta), color="black", linewidth=1,
        linestyle="--", label="clip(I, 0, θ): what the ANN computes")
for label, rate in curves.items():
    ax.step(currents[:, 0], rate, where="post", label=label)
ax.set(xlabel="input current I (θ = 1)", ylabel="rate θ·N/T",
       title=f"one IF neuron, T = {T}: quantised, clipped at θ")
ax.legend(fontsize="small", loc="upper left")
fig

# %% [markdown]
# ## The error falls as 1/T
#
# Rounding down is off by θ/(2T) on average (always too low: a bias); rounding to
# nearest is off by θ/(4T) on average and never more than θ/(2T), with no bias. Either
# way the error halves each time T doubles: precision is bought with time (and spikes).

# %%
inside = currents[:, 0] <= theta
fig = Figure(figsize=(6.5, 4.0), layout="constrained")
ax = fig.add_subplot()
steps = [4, 8, 16, 32, 64, 128]
for label, v0 in (("v(0) = 0", 0.0), ("v(0) = θ/2", 0.5)):
    errors = []
    for t in steps:
        result = evsim.simulate(neuron(v0=v0), currents, T=t, engine="dense",
                                per_image_counts=True)
        rate = theta * result.spike_counts["relu1"].reshape(-1) / t
        errors.append(np.abs(rate - currents[:, 0])[inside].mean())
    ax.loglog(steps, errors, marker="o", base=2, label=label)
for share, style in ((2, "--"), (4, ":")):
    ax.loglog(steps, [theta / (share * t) for t in steps], base=2, color="gray",
              linestyle=style, label=f"θ/({share}T)")
ax.set(xlabel="T", ylabel="mean |rate − I| for I ≤ θ", title="quantisation error versus T")
ax.legend(fontsize="small")
fig
