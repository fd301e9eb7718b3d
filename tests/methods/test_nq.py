"""NQ (methods.md §5): noisy QCFS training activation and σ estimated with the dense engine."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from evsim.training import QCFS, NoisyQCFS, estimate_noise  # noqa: E402


def _dyadic(rng, shape, bits=3, kmax=8, low=None):
    low = -kmax if low is None else low
    return rng.integers(low, kmax + 1, size=shape).astype(np.float32) / 2 ** bits


def test_zero_sigma_is_exactly_qcfs_and_noise_is_absent_at_inference():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 4
    noisy, plain = NoisyQCFS(4, 2.0), QCFS(4, 2.0)
    noisy.train()
    assert torch.equal(noisy(x), plain(x))
    noisy.sigma.fill_(0.5)
    assert not torch.equal(noisy(x), plain(x))  # training mode with σ > 0 adds noise
    noisy.eval()
    assert torch.equal(noisy(x), plain(x)) and torch.equal(noisy(x), noisy(x))


def test_first_layer_sigma_is_zero_when_T_equals_L():
    """Constant analog input, T = L, v(0) = θ/2: the first layer's rate is the QCFS output."""
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), NoisyQCFS(4, 2.0),
                                torch.nn.Conv2d(4, 4, 3, padding=1), NoisyQCFS(4, 2.0),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_(torch.from_numpy(_dyadic(rng, tuple(m.weight.shape))))
                m.bias.copy_(torch.from_numpy(_dyadic(rng, tuple(m.bias.shape), kmax=4)))
    images = _dyadic(rng, (16, 1, 6, 6), low=0)
    sigmas = estimate_noise(model, images, (1, 6, 6), T=4)
    assert set(sigmas) == {"1", "3"}
    assert sigmas["1"] == 0.0
    assert sigmas["3"] > 0.0  # deeper layers see spiking, time-varying input
    assert float(model[1].sigma) == 0.0
    assert float(model[3].sigma) == pytest.approx(sigmas["3"], rel=1e-6)


def _straight_through_qcfs(x, lam, levels, shift):
    """The textbook form: a floor whose gradient passes straight through, then the clamp."""
    z = x * levels / lam + shift
    q = z + (torch.floor(z) - z).detach()
    return lam * torch.clamp(q, 0, levels) / levels


def test_qcfs_gradient_is_the_straight_through_gradient_exactly():
    rng = np.random.default_rng(1)
    # dyadic inputs from well below 0 to well above λ, so every branch of the mask is hit,
    # including floor(z) = 0 and floor(z) = L exactly
    x_np = _dyadic(rng, (6, 3, 4, 4), bits=3, kmax=40)
    grad_np = _dyadic(rng, (6, 3, 4, 4), bits=2, kmax=4)
    module = QCFS(4, 2.0)
    x = torch.from_numpy(x_np).requires_grad_()
    out = module(x)
    (out * torch.from_numpy(grad_np)).sum().backward()
    x_ref = torch.from_numpy(x_np).requires_grad_()
    lam_ref = torch.tensor(2.0, requires_grad=True)
    ref = _straight_through_qcfs(x_ref, lam_ref, 4, 0.5)
    (ref * torch.from_numpy(grad_np)).sum().backward()
    assert torch.equal(out, ref)
    assert torch.equal(x.grad, x_ref.grad)
    assert torch.equal(module.lam.grad, lam_ref.grad)
    assert 0 < int((x.grad == 0).sum()) < x.numel()  # the mask cuts some gradients, not all


def _first_layer_model(rng):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), NoisyQCFS(4, 2.0),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        for m in (model[0], model[3]):
            m.weight.copy_(torch.from_numpy(_dyadic(rng, tuple(m.weight.shape))))
            m.bias.copy_(torch.from_numpy(_dyadic(rng, tuple(m.bias.shape), kmax=4)))
    return model


def test_sigma_over_several_T_adds_the_first_layers_grid_mismatch():
    """First layer, constant input z, v(0) = θ/2: N(T) = clip(floor(T z/λ + 1/2), 0, T).

    At T = 16 its rate λ N/16 differs from the 4-level QCFS value; σ over (4, 16) is the
    larger of the two residual stds, i.e. the T = 16 one (the T = 4 one is 0).
    """
    rng = np.random.default_rng(2)
    model = _first_layer_model(rng)
    images = _dyadic(rng, (16, 1, 6, 6), low=0)
    with torch.no_grad():
        z = model[0](torch.from_numpy(images)).numpy().astype(np.float64)
    lam = 2.0
    qcfs = lam * np.clip(np.floor(4 * z / lam + 0.5), 0, 4) / 4
    rate16 = lam * np.clip(np.floor(16 * z / lam + 0.5), 0, 16) / 16
    expected = float(np.std(qcfs - rate16))
    assert expected > 0
    assert estimate_noise(model, images, (1, 6, 6), T=4) == {"1": 0.0}
    sigmas = estimate_noise(model, images, (1, 6, 6), T=(4, 16))
    assert sigmas["1"] == pytest.approx(expected, rel=1e-12)
    assert float(model[1].sigma) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("steps", [0, (), (4, 0), 2.5])
def test_bad_step_counts_are_refused(steps):
    model = _first_layer_model(np.random.default_rng(0))
    with pytest.raises(ValueError, match="T must be a positive int"):
        estimate_noise(model, np.zeros((1, 1, 6, 6), np.float32), (1, 6, 6), T=steps)


@pytest.mark.slow
def test_bundled_nq_model_holds_its_accuracy_from_T8_to_T128():
    """issue 13: the NQ model's SNN does not collapse at large T (smoke size: 500 images)."""
    import evsim
    from evsim.data import load_bundled_sample
    from evsim.models import load_model

    images, labels = load_bundled_sample("test")
    snn = evsim.convert(load_model("vgg_nq"), method="nq")
    result = evsim.simulate(snn, images[:500], T=128, checkpoints=[8, 128])
    at8, at128 = result.accuracy(labels[:500])
    assert at8 > 0.85
    assert at128 >= at8 - 0.01


def test_needs_a_noisy_activation():
    with pytest.raises(ValueError, match="no NoisyQCFS"):
        estimate_noise(torch.nn.Sequential(torch.nn.Linear(2, 2)), np.zeros((1, 2)), (2,))
