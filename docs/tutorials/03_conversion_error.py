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
# # 3. Where the conversion error comes from, layer by layer
#
# A converted neuron's rate θ·N/T differs from the ANN activation `a` it stands for.
# Tutorial 1 showed two reasons for a single neuron with a constant input; a network
# adds two more. For every neuron of every spiking layer we split `rate − a` into four
# parts that add up exactly:
#
# | part | definition | why |
# |---|---|---|
# | clipping | `min(a, θ) − a` | a neuron fires at most once per step: activations above θ are lost |
# | quantisation | `q(a) − min(a, θ)` | N is a whole number: `q(I) = θ/T · clip(floor((v(0) + T·I)/θ), 0, T)`, the count a constant current `I` gives |
# | propagated | `q(Ī) − q(a)` | the layer's mean input current `Ī` is not the ANN's: earlier layers were wrong already |
# | uneven arrival | `rate − q(Ī)` | the input is not constant: nothing arrives in the first steps (delay), and a neuron that fired on early input cannot take the spike back |
#
# `Ī` is measured, not modelled: with reset by subtraction, the current a neuron
# received in T steps is `v(T) − v(0) + θ·N`, read off the dense engine's recorded
# membrane. (`docs/methods.md` gives the neuron's rules; `evsim.analysis.conversion_error`
# gives the total per layer.)

# %%
# %matplotlib inline
import os

import numpy as np
from matplotlib.figure import Figure

import evsim
from evsim import plot
from evsim.analysis import conversion_error
from evsim.data import load_bundled_sample
from evsim.models import load_model

smoke = os.environ.get("EVSIM_TUTORIAL_SMOKE") == "1"
n_images = 4 if smoke else 32

network = load_model()
calibration, _ = load_bundled_sample("train")
images = load_bundled_sample("test")[0][:n_images]
_, activations = evsim.forward(network, images, dtype=np.float64,
                               activations=["relu1", "relu2", "relu3"])

# %%
PARTS = ("clipping", "quantisation", "propagated", "uneven arrival")


def error_parts(snn, T):
    """{layer: {part: (images, *shape) float64}} of one run recording every neuron."""
    result = evsim.simulate(snn, images, T=T, engine="dense", per_image_counts=True,
                            dtype=np.float64, record={name: None for name in snn.neurons})
    parts = {}
    for name, spec in snn.neurons.items():
        shape = (n_images,) + snn.network.shape(name)
        theta = snn.threshold(name).astype(np.float64)
        v0 = np.broadcast_to(spec.v_init, shape[1:]).astype(np.float64)
        count = result.spike_counts[name].reshape(shape)
        v_end = result.membrane[name][-1].reshape(shape)
        received = (v_end - v0 + theta * count) / T          # mean input current Ī
        a = activations[name]

        def q(current, theta=theta, v0=v0):
            return theta / T * np.clip(np.floor((v0 + T * current) / theta), 0, T)

        rate = theta * count / T
        parts[name] = {"clipping": np.minimum(a, theta) - a,
                       "quantisation": q(a) - np.minimum(a, theta),
                       "propagated": q(received) - q(a),
                       "uneven arrival": rate - q(received)}
        total = sum(parts[name].values())
        assert np.allclose(total, rate - a)                  # the four parts add up
    return parts


runs = {"percentile, T = 16": (evsim.convert(network, calibration, method="percentile"), 16),
        "percentile, T = 64": (evsim.convert(network, calibration, method="percentile"), 64),
        "percentile + v(0) = θ/2, T = 16": (evsim.convert(network, calibration,
                                                          method="percentile",
                                                          initial_potential=0.5), 16)}
measured = {label: error_parts(snn, T) for label, (snn, T) in runs.items()}

# %% [markdown]
# ## The parts, layer by layer
#
# Bars: the mean of each part over all neurons and images (its bias, signed), and
# its root mean square (its size). At T = 16 quantisation dominates the first layer
# and is a negative bias (rounding down); deeper layers inherit the errors before them
# and add uneven arrival, which shrinks as T grows (the first steps matter less).
# v(0) = θ/2 turns quantisation into rounding to nearest: most of its bias goes (what
# is left comes from the many small activations, below θ/(2T), that round to 0). In
# the first layer, whose input is the image itself at every step, nothing arrives
# unevenly and nothing is propagated: those parts are exactly zero there.

# %%
fig = Figure(figsize=(12, 7), layout="constrained")
axes = fig.subplots(2, len(measured), sharey="row")
for column, (label, parts) in enumerate(measured.items()):
    layers = list(parts)
    x = np.arange(len(layers))
    for k, part in enumerate(PARTS):
        offset = (k - 1.5) * 0.2
        axes[0, column].bar(x + offset, [parts[layer][part].mean() for layer in layers], 0.2,
                            label=part)
        axes[1, column].bar(x + offset, [np.sqrt((parts[layer][part] ** 2).mean())
                                         for layer in layers], 0.2, label=part)
    for row in axes[:, column]:
        row.set_xticks(x, layers)
        row.axhline(0, color="black", linewidth=0.8)
    axes[0, column].set_title(label, fontsize="medium")
axes[0, 0].set_ylabel("mean (bias)")
axes[1, 0].set_ylabel("root mean square")
handles, names = axes[0, 0].get_legend_handles_labels()
fig.legend(handles, names, loc="outside lower center", ncols=4)
fig.suptitle("rate − activation, split into its sources (activation units)")
fig

# %% [markdown]
# ## How much is clipped?
#
# The percentile threshold lets 0.1 % of the calibration activations exceed θ on
# purpose: outliers no longer make every other neuron slow. The fraction of neurons
# above θ on the test images, per layer:

# %%
snn16 = runs["percentile, T = 16"][0]
for name in snn16.neurons:
    above = (activations[name] > snn16.threshold(name)).mean()
    print(f"{name}: {100 * above:.3f} % of activations above θ")

# %% [markdown]
# ## The total, against the ANN
#
# `evsim.analysis.conversion_error` reports the total per layer (RMS, bias and the
# correlation of rates with activations): the sum of the four parts above.

# %%
snn, T = runs["percentile, T = 64"]
result = evsim.simulate(snn, images, T=T, per_image_counts=True)
plot.conversion_error(conversion_error(snn, result, images))
