"""Pretrained ANNs that ship with evsim, ready to convert to spiking networks.

Each model ``<name>`` is three files in this package: ``<name>.npz`` (the
:class:`~evsim.network.Network`, evsim's own format), ``<name>.json`` (metadata:
architecture, training recipe, recorded accuracies) and ``<name>.md`` (a model
card with the command that retrains it).

``fashion_cnn`` (the default) is a small CNN for Fashion-MNIST, trained by
``examples/train_default_model.py`` on the 60 000 training images. It takes
float32 images ``(N, 1, 28, 28)`` in [0, 1] exactly as :mod:`evsim.data` returns
them and outputs 10 logits. Layers and per-image output shapes::

    conv1 (16, 28, 28)  bn1 (16, 28, 28)  relu1 (16, 28, 28)  pool1 (16, 14, 14)
    conv2 (32, 14, 14)  bn2 (32, 14, 14)  relu2 (32, 14, 14)  pool2 (32, 7, 7)
    conv3 (32, 7, 7)    bn3 (32, 7, 7)    relu3 (32, 7, 7)    flatten (1568,)  fc (10,)

The convolutions have no bias; BatchNorm is stored unfolded with its running
statistics; pooling is 2x2 average pooling.

The task models read 64x64 Fashion-MNIST scenes (:mod:`evsim.data.scenes`), each in a
ReLU and a QCFS (L = 4) variant, trained by ``examples/train_task_models.py``:
``unet_relu`` / ``unet_qcfs``, a U-Net-style segmenter (11 logits per pixel), and
``centernet_relu`` / ``centernet_qcfs``, a CenterNet-style detector at stride 4 (10
heatmap logits and the box width and height per cell of a 16x16 grid; decode with
``evsim.tasks.CenterNetHead(10, 4, offset=False)``). Each also ships as ``<name>.onnx``,
its ONNX export.

Example::

    from evsim.data import load_bundled_sample
    from evsim.models import load_model, model_info

    network = load_model()
    images, labels = load_bundled_sample("test")
    model_info("fashion_cnn")["sample_accuracy"]
"""

from __future__ import annotations

import json
from importlib import resources

from ..io import load
from ..network import Network
from ..errors import EvsimValueError

__all__ = ["DEFAULT_MODEL", "available_models", "load_model", "model_info"]

#: Name of the model :func:`load_model` returns by default.
DEFAULT_MODEL = "fashion_cnn"


def available_models() -> list[str]:
    """Names of the bundled models, sorted."""
    return sorted(entry.name[:-len(".npz")] for entry in resources.files(__package__).iterdir()
                  if entry.name.endswith(".npz"))


def _resource(name: str, suffix: str):
    models = available_models()
    if name not in models:
        raise EvsimValueError(f"unknown model {name!r}; available models: {', '.join(models)}")
    return resources.files(__package__).joinpath(f"{name}{suffix}")


def load_model(name: str = DEFAULT_MODEL) -> Network:
    """Load the bundled model ``name`` as a :class:`~evsim.network.Network`.

    Raises
    ------
    ValueError
        If no bundled model has that name; the message lists the available ones.
    """
    with resources.as_file(_resource(name, ".npz")) as path:
        return load(path)


def model_info(name: str = DEFAULT_MODEL) -> dict:
    """The metadata of the bundled model ``name`` (its JSON file) as a dict.

    Raises
    ------
    ValueError
        If no bundled model has that name; the message lists the available ones.
    """
    return json.loads(_resource(name, ".json").read_text(encoding="utf-8"))
