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
# # 5. Counting operations and energy
#
# An ANN layer costs one multiply-accumulate (MAC) per synapse per image. A spiking layer
# costs one accumulate per synapse **per spike**: a synaptic operation (SOP). SOPs
# already contain the firing rate (a silent neuron causes none), so they are multiplied
# by the energy of an accumulate and never by a rate again. evsim counts SOPs exactly,
# per layer and per step, while it simulates; NeuroBench's metrics are computed from the
# same run for comparison. (`docs/energy.md` and `docs/neurobench.md` give the
# conventions.)

# %%
# %matplotlib inline
import os

import numpy as np
from matplotlib.figure import Figure

import evsim
from evsim import plot
from evsim.analysis import ann_macs, energy_report, neurobench_metrics
from evsim.data import load_bundled_sample
from evsim.models import load_model

smoke = os.environ.get("EVSIM_TUTORIAL_SMOKE") == "1"
n_images, T = (8, 32) if smoke else (64, 64)

network = load_model()
snn = evsim.convert(network, load_bundled_sample("train")[0], method="percentile",
                    initial_potential=0.5)
images = load_bundled_sample("test")[0][:n_images]

# the dense engine, recording every neuron, so that NeuroBench's metrics are exact below
result = evsim.simulate(snn, images, T=T, engine="dense",
                        record={name: None for name in snn.neurons})

# %% [markdown]
# ## MACs against SOPs, layer by layer
#
# `result.sops[layer]` holds the SOPs of each step, summed over the images, for every
# layer that accumulates spikes. The first convolution reads the image itself (analog
# values), so it is computed once per image with MACs and its current re-injected at
# every step: it has no SOPs. conv2 and conv3 have the average pooling before them
# folded in, so a spike reaches the composite targets of pooling and convolution: more
# synapses per spike than the ANN's convolution has per pooled input.

# %%
macs = ann_macs(snn.network)
print("| layer | ANN MACs per image | SNN SOPs per image | SOPs / MACs |")
print("|---|---:|---:|---:|")
for name, mac in macs.items():
    sops = result.sops[name].sum() / n_images if name in result.sops else 0.0
    print(f"| {name} | {mac:,} | {sops:,.0f} | {sops / mac:.2f} |")

# %% [markdown]
# ## SOPs per step
#
# The cost of a step is not constant: every neuron starts at the same potential (θ/2),
# so many reach θ together in the first steps, and neurons with regular input keep
# firing in rhythm afterwards. The sum over the steps up to a checkpoint is what
# stopping there costs.

# %%
fig = Figure(figsize=(7.5, 4), layout="constrained")
ax = fig.add_subplot()
for name, per_step in result.sops.items():
    ax.plot(np.arange(1, T + 1), per_step / n_images, marker=".", label=name)
ax.set(xlabel="time step", ylabel="SOPs per image", title="synaptic operations per step")
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
fig

# %% [markdown]
# ## Energy
#
# `energy_report` prices the counts with an energy table (float32 at 45 nm, Horowitz
# 2014, by default: a MAC 4.6 pJ, an accumulate 0.9 pJ). The SNN wins where its SOPs per
# image cost less than the ANN's MACs: with few steps and sparse spikes. This small,
# dense CNN at this T is not such a case; the last line of the report says so.

# %%
report = energy_report(snn, result)
print(report.to_markdown())
plot.energy_breakdown(report)

# %% [markdown]
# ## Energy with memory and addressing
#
# The figures above charge arithmetic only. Lemaire et al. (ICONIP 2022) also charge
# every memory access (weights, membrane potentials, spike queues, about 13 pJ each at
# 45 nm) and the address arithmetic of each event; `report.memory` applies their model
# to evsim's exact counts (`docs/energy.md` lists each term). Each synaptic operation
# reads a weight and reads and writes a membrane, so memory dominates, and the SNN must
# be much sparser to win.

# %%
parts = report.memory.parts_pj()
print(f"SNN with memory: {report.memory.snn_pj / 1e6:.3g} µJ "
      f"(memory {parts['memory'] / 1e6:.3g}, compute {parts['compute'] / 1e6:.3g}, "
      f"addressing {parts['addressing'] / 1e6:.3g}); ANN with memory: "
      f"{report.memory.ann_pj / 1e6:.3g} µJ; compute-only SNN: {report.snn_pj / 1e6:.3g} µJ")

# %% [markdown]
# ## NeuroBench's metrics beside evsim's counts
#
# NeuroBench counts one operation per (non-zero input, non-zero weight) pair at every
# step. With plain IF neurons (one spike per step at most) and no zero weights, its
# `Effective_ACs` equal evsim's SOPs; its `Effective_MACs` are the analog first layer,
# which NeuroBench recomputes every step (evsim computes it once and re-injects it).

# %%
metrics = neurobench_metrics(snn, result, images)
operations = metrics["SynapticOperations"]
print(f"evsim SOPs per image:            {result.total_sops() / n_images:,.0f}")
print(f"NeuroBench Effective_ACs:        {operations['Effective_ACs']:,.0f}")
print(f"NeuroBench Effective_MACs:       {operations['Effective_MACs']:,.0f}")
print(f"evsim analog head MACs (once):   {sum(result.macs.values()):,}")
print(f"NeuroBench ActivationSparsity:   {metrics['ActivationSparsity']:.4f}")
print(f"NeuroBench MembraneUpdates:      {metrics['MembraneUpdates']:,.0f}")

fig = Figure(figsize=(7.5, 4), layout="constrained")
ax = fig.add_subplot()
bars = {"evsim SOPs": result.total_sops() / n_images,
        "NeuroBench\nEffective_ACs": operations["Effective_ACs"],
        "NeuroBench\nEffective_MACs": operations["Effective_MACs"],
        "evsim analog\nhead MACs": sum(result.macs.values()),
        "ANN MACs": sum(macs.values())}
ax.bar(list(bars), list(bars.values()), color=["tab:blue", "tab:cyan", "tab:orange",
                                                "tab:red", "tab:gray"])
ax.set_yscale("log")
ax.set(ylabel="operations per image", title=f"operations per image, T = {T}")
fig
