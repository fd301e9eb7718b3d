"""benchmarks/peers.py hands the peers the same ANN as evsim, on MobileNet-v2 and the U-Net.

The script fixes its thread count on import, so it is imported in a subprocess.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
sys.argv = ["peers.py"]
sys.path.insert(0, "benchmarks")
import numpy as np, torch
import peers
from evsim.data import load_bundled_sample

images, labels = load_bundled_sample("test")
calibration, calibration_labels = load_bundled_sample("train")
for name in ("mobilenet", "unet_relu"):
    work = peers.model_and_data(name, images[:4], labels[:4], calibration[:40],
                                calibration_labels[:40])
    with torch.no_grad():
        torch_out = peers.to_torch(work.network)(torch.from_numpy(work.images)).numpy()
    evsim_out = peers.forward(work.network, work.images).reshape(torch_out.shape)
    print(name, work.metric, work.images.shape, float(np.abs(torch_out - evsim_out).max()),
          work.score(evsim_out))
    for clip_as_relu in (False, True):
        kinds = {type(m).__name__ for m in peers.to_torch(work.network, clip_as_relu).children()}
        print(name, f"modules{int(clip_as_relu)}", sorted(kinds))
"""


def test_peers_torch_module_computes_the_evsim_network():
    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {tuple(line.split()[:2]): line for line in done.stdout.splitlines()}
    mobilenet = lines[("mobilenet", "accuracy")].split(")")
    unet = lines[("unet_relu", "mIoU")].split(")")
    for rest in (mobilenet[1], unet[1]):
        difference, score = (float(v) for v in rest.split())
        assert difference < 1e-4
        assert 0.0 < score <= 1.0
    assert "(4, 1, 64, 64)" in lines[("unet_relu", "mIoU")]
    as_trained, as_relu = lines[("mobilenet", "modules0")], lines[("mobilenet", "modules1")]
    assert "'ReLU6'" in as_trained and "'ReLU'" not in as_trained
    assert "'ReLU'" in as_relu and "ReLU6" not in as_relu and "'Identity'" in as_relu
    assert "'ConvTranspose2d'" in lines[("unet_relu", "modules0")]
    assert "'Upsample'" in lines[("unet_relu", "modules0")]
