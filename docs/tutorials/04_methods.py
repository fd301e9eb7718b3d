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
# # 4. The conversion methods on one model, and what each fixes
#
# Tutorial 3 split the conversion error into clipping, quantisation, error propagated
# from earlier layers and uneven arrival of spikes. Each method attacks some of them:
#
# | method | what it changes | what it fixes |
# |---|---|---|
# | `percentile` (Rueckauer 2017) | θ = 99.9th percentile of the calibration activations, reset by subtraction | the baseline: little clipping, but a θ the ANN was not trained for |
# | `qcfs` / `opi` (Bu 2022) | the ANN is trained with a clipped, quantised activation whose bound λ becomes θ; v(0) = θ/2 | clipping (the ANN never exceeds λ) and quantisation (the ANN already rounds to nearest, as the SNN does with θ/2) |
# | `spicalib` (Li 2022) | bursts of up to Γ spikes per step; neurons silent for too long send negative spikes | uneven arrival: spikes sent on early input that later turned out too many are taken back |
# | `spikeconverter` | the temporal scheme: each layer integrates a whole window, then fires | uneven arrival, completely: each layer sees its whole input before deciding, at a latency of (layers + 1) windows |
# | `nq` | like QCFS, but the ANN is trained with noise on its activations | propagated error: an ANN that tolerates small errors in its inputs |
#
# The bundled `vgg_qcfs` was trained with QCFS activations (L = 4), so the percentile,
# QCFS, SpiCalib and SpikeConverter presets can all convert it; `vgg_nq` is the same
# network trained with noise. `evsim.compare_methods` converts with each method,
# simulates once per method (accuracy at every T from checkpoints) and tabulates
# accuracy, synaptic operations and energy. `evsim.options.METHODS` lists the presets.

# %%
# %matplotlib inline
import os

import numpy as np
from matplotlib.figure import Figure

import evsim
from evsim.analysis import conversion_error
from evsim.data import load_bundled_sample
from evsim.models import load_model
from evsim.options import METHODS

smoke = os.environ.get("EVSIM_TUTORIAL_SMOKE") == "1"
n_images = 32 if smoke else 300
steps = [2, 4, 8, 16, 32]

calibration = load_bundled_sample("train")[0][:200]
images, labels = load_bundled_sample("test")
images, labels = images[:n_images], labels[:n_images]
for name in ("percentile", "qcfs", "spicalib", "spikeconverter", "nq"):
    print(f"{name}: {METHODS[name]}")

# %%
qcfs_model = load_model("vgg_qcfs")
comparison = evsim.compare_methods(qcfs_model, calibration, images, labels,
                                   methods=["percentile", "qcfs", "spicalib",
                                            "spikeconverter"], T=steps)
print(comparison.to_markdown())
comparison.plot()

# %% [markdown]
# QCFS and SpikeConverter are close to the ANN from a few steps on: the ANN already
# computes what the SNN can represent. Percentile needs many more steps for the same
# network. SpiCalib gains over percentile as T grows (its negative spikes need time
# to correct), and SpikeConverter pays with latency: the output is complete only after
# (layers + 1) windows.
#
# ## Noise-trained: NQ
#
# `vgg_nq` converts exactly like QCFS; only its training differs.

# %%
nq = evsim.compare_methods(load_model("vgg_nq"), calibration, images, labels,
                           methods=["percentile", "nq"], T=steps)
print(nq.to_markdown().split("### SOPs")[0])
nq.plot()

# %% [markdown]
# ## The error per layer, method by method
#
# The RMS of `rate − activation` per layer at T = 8 (`evsim.analysis.conversion_error`),
# for the synchronous methods: QCFS's are the smallest in every layer; all are largest
# in the last spiking layer, which collects the errors of every layer before it.

# %%
T = 8
fig = Figure(figsize=(8, 4), layout="constrained")
ax = fig.add_subplot()
for k, method in enumerate(["percentile", "qcfs", "spicalib"]):
    snn = evsim.convert(qcfs_model, calibration, method=method, T=T)
    result = evsim.simulate(snn, images, T=T, per_image_counts=True, checkpoints=[T])
    errors = conversion_error(snn, result, images)
    x = np.arange(len(errors))
    ax.bar(x + (k - 1) * 0.27, [e.rms for e in errors.values()], 0.27, label=method)
ax.set_xticks(x, list(errors))
ax.set(ylabel="RMS of rate − activation", title=f"conversion error per layer, T = {T}")
ax.legend(fontsize="small")
fig
