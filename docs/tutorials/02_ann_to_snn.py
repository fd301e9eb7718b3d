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
# # 2. From ANN to SNN: the bundled CNN, picture by picture
#
# The bundled model is a small CNN trained on Fashion-MNIST (three convolutions with
# BatchNorm and ReLU, average pooling, one dense readout). Conversion keeps its weights,
# folds BatchNorm into them and turns every ReLU into a layer of IF neurons with a
# threshold θ chosen from calibration images. Then we watch one image go through it:
# its spike counts as feature maps, a raster, membrane traces, an animation of the
# spikes step by step, and accuracy versus T on a few test images.
#
# `EVSIM_TUTORIAL_SMOKE=1` (as the test suite sets it) uses fewer images.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
from IPython.display import Image

import evsim
from evsim import plot
from evsim.data import load_bundled_sample
from evsim.models import load_model

smoke = os.environ.get("EVSIM_TUTORIAL_SMOKE") == "1"
n_images, T = (32, 32) if smoke else (200, 64)

network = load_model()                                # the bundled fashion_cnn
calibration, _ = load_bundled_sample("train")
images, labels = load_bundled_sample("test")
images, labels = images[:n_images], labels[:n_images]
snn = evsim.convert(network, calibration, method="percentile")
print(snn)

# %% [markdown]
# ## One image, every neuron
#
# The dense engine can record every neuron of every spiking layer (its memory grows
# with T × neurons, fine for one image of this model). Per-image spike counts give the
# feature maps.

# %%
image = images[:1]
traced = evsim.simulate(snn, image, T=T, engine="dense", per_image_counts=True,
                        record={name: None for name in snn.neurons})
classes = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
           "sneaker", "bag", "boot"]
print("label:", classes[labels[0]], "| SNN says:", classes[traced.predictions()[-1, 0]],
      "| ANN says:", classes[int(evsim.forward(network, image).argmax())])
plot.input_image(image[0], title=f"test image 0: {classes[labels[0]]}")

# %% [markdown]
# ## Spike counts as feature maps
#
# Each panel is one channel of a layer; the brightness is how many spikes each neuron
# sent in T steps. The first layer's maps still look like edges of the garment; deeper
# layers are coarser and sparser.

# %%
plot.feature_maps(traced, "relu1", inputs=image, channels=range(8))

# %%
plot.layer_maps(traced, inputs=image, channels=6)

# %% [markdown]
# ## When the spikes come: a raster
#
# One row per neuron (the channel with the most spikes, its central 8×8 patch), one
# mark per spike. Neurons with a large activation fire regularly from early on; others
# start late or stay silent.

# %%
neurons, rule = plot.adjacent_neurons(snn.network.shape("relu2"),
                                      traced.spike_counts["relu2"][0], 8)
plot.beside_input(image[0], lambda ax: plot.spike_raster(traced, "relu2", neurons=neurons,
                                                         rule=rule, ax=ax))

# %% [markdown]
# ## Membrane traces
#
# The potential of the busiest of those neurons, before each reset (the value compared
# with θ: it crosses the dashed line exactly where the neuron fires) and after it.

# %%
busiest = int(neurons[np.argmax(traced.spike_counts["relu2"][0].reshape(-1)[neurons])])
plot.beside_input(image[0], lambda ax: plot.membrane_trace(traced, snn, "relu2", busiest,
                                                           ax=ax))

# %% [markdown]
# ## Spikes travelling through the layers
#
# One frame per step: which neurons of each layer fired at that step (a feature map's
# channels summed). Written as a GIF with matplotlib's PillowWriter.

# %%
gif = plot.spike_animation(traced, Path("spikes.gif"), inputs=image, fps=6)
Image(filename=str(gif))

# %% [markdown]
# ## Rates against activations, and accuracy versus T
#
# Every neuron's rate θ·N/T against the ANN activation it stands for: on the identity
# line where conversion is exact. Then accuracy on the test images at every checkpoint
# 1, 2, 4, …, T of one run (the event engine: the same results, faster).

# %%
plot.rate_vs_activation(snn, traced, image)

# %%
result = evsim.simulate(snn, images, T=T, engine="event")
ann_accuracy = float((evsim.forward(network, images).argmax(axis=1) == labels).mean())
print(result.accuracy_table(labels, ann_accuracy))
plot.accuracy_vs_T({"percentile": (result.checkpoints, result.accuracy(labels))},
                   ann_accuracy)
