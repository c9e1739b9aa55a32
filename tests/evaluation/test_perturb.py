"""mclviz.evaluation.perturb: input pre-processing against per-image loops written from
ODIN's (Liang et al. 2018, Eq. 2) and Lee et al. 2018's (Eq. 4) equations, float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mclviz.evaluation import perturbed_outputs
from mclviz.scoring import ODIN, Mahalanobis


class TinyNet(nn.Module):
    """An MCLModel stand-in: ``model(x, output=(names,))`` -> {name: (n, d)}; conv + BN +
    dropout, so that eval mode matters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 3 * 3, 6)
        self.classifier = nn.Linear(6, 3)
        self.head = nn.Linear(6, 4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.bn(self.conv(x))))
        return self.fc(h.flatten(1))

    def forward(self, x: torch.Tensor, output="z"):
        if isinstance(output, tuple | list):
            f = self.features(x)
            heads = {"features": f, "logits": self.classifier(f), "z": self.head(f)}
            return {name: heads[name] for name in output}
        return self.forward(x, (output,))[output]


@pytest.fixture
def model() -> TinyNet:
    torch.manual_seed(0)
    m = TinyNet().double()
    with torch.no_grad():  # BN statistics away from the defaults
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(
        n, 3, 5, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def _odin_loop(model: TinyNet, images: torch.Tensor, T: float, eps: float) -> torch.Tensor:
    """ODIN, one image at a time: x' = x - eps * sign(-grad_x log S_yhat(x; T))."""
    model.eval()
    rows = []
    for i in range(len(images)):
        x = images[i : i + 1].clone().requires_grad_(True)
        logits = model(x, output="logits")[0]  # (C,)
        yhat = int(logits.argmax())
        log_s = torch.log(torch.exp(logits / T)[yhat] / torch.exp(logits / T).sum())
        (grad,) = torch.autograd.grad(-log_s, x)
        moved = x.detach() - eps * torch.sign(grad)
        with torch.no_grad():
            rows.append(model(moved, output="logits")[0])
    return torch.stack(rows)[:, None].float()  # (n, 1, C)


def _mahalanobis_loop(model, images, mu, sigma, eps: float) -> torch.Tensor:
    """Lee et al.: x^ = x + eps * sign(grad_x M(x)), M(x) = max_c -(f - mu_c)^T S^-1 (f - mu_c)."""
    model.eval()
    prec = torch.linalg.inv(sigma)
    rows = []
    for i in range(len(images)):
        x = images[i : i + 1].clone().requires_grad_(True)
        f = model(x, output="features")[0]  # (d,)
        m = max(-(f - mu[c]) @ prec @ (f - mu[c]) for c in range(len(mu)))
        (grad,) = torch.autograd.grad(m, x)
        moved = x.detach() + eps * torch.sign(grad)
        with torch.no_grad():
            rows.append(model(moved, output="features")[0])
    return torch.stack(rows)[:, None].float()  # (n, 1, d)


@pytest.mark.parametrize("n, batch_size", [(1, 1), (7, 3), (10, 64)])
@pytest.mark.parametrize("temperature, eps", [(1000.0, 0.0014), (1.0, 0.05), (10.0, 0.2)])
def test_odin_matches_the_per_image_loop(model, n, batch_size, temperature, eps):
    x = _images(n, seed=n)
    det = ODIN(temperature=temperature, epsilon=eps).fit(model(x, output="logits"))
    got = perturbed_outputs(
        model, x, "logits", det.differentiable_score, eps, batch_size=batch_size, progress=False
    )
    want = _odin_loop(model, x, temperature, eps)
    assert got.shape == (n, 1, 3) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    with torch.no_grad():  # and the step moved the outputs
        plain = model(x, output="logits").float()[:, None]
    assert not torch.allclose(got, plain)


@pytest.mark.parametrize("eps", [0.002, 0.05])
def test_mahalanobis_matches_the_per_image_loop(model, eps):
    x_train, x = _images(40, seed=1), _images(9, seed=2)
    with torch.no_grad():
        f_train = model(x_train, output="features")
    y = torch.arange(40) % 3
    det = Mahalanobis(epsilon=eps, ridge=0.0).fit(f_train, y)
    got = perturbed_outputs(model, x, "features", det.differentiable_score, eps, progress=False)
    # the paper's estimate: class means and the pooled within-class covariance over N
    mu = torch.stack([f_train[y == c].mean(0) for c in range(3)])
    centred = f_train - mu[y]
    sigma = centred.T @ centred / len(y)
    torch.testing.assert_close(got, _mahalanobis_loop(model, x, mu, sigma, eps))


def test_the_step_raises_the_score(model):
    """The step follows the gradient of the detector's own score: the score goes up."""
    x = _images(20, seed=5)
    det = ODIN(temperature=1.0, epsilon=1e-3).fit(model(x, output="logits"))
    with torch.no_grad():
        before = det.score(model(x, output="logits"))
    moved = perturbed_outputs(model, x, "logits", det.differentiable_score, 1e-3, progress=False)
    assert bool((det.score(moved[:, 0]) > before).all())


def test_training_flags_are_restored(model):
    x = _images(6)
    det = ODIN(epsilon=0.01).fit(model(x, output="logits"))
    model.train()
    model.bn.eval()  # a mixed state must come back exactly
    want = {name: m.training for name, m in model.named_modules()}
    got = perturbed_outputs(model, x, "logits", det.differentiable_score, 0.01, progress=False)
    assert {name: m.training for name, m in model.named_modules()} == want
    # ... and the outputs were computed in eval mode (dropout off, running BN statistics)
    torch.testing.assert_close(got, _odin_loop(model, x, 1000.0, 0.01))
    model.train()
    model.bn.eval()

    def broken(z: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("score failed")

    with pytest.raises(RuntimeError, match="score failed"):
        perturbed_outputs(model, x, "logits", broken, 0.01, progress=False)
    assert {name: m.training for name, m in model.named_modules()} == want


def test_no_side_effects_on_images_or_weights(model):
    x = _images(5)
    x0 = x.clone()
    det = ODIN(epsilon=0.01).fit(model(x, output="logits"))
    perturbed_outputs(model, x, "logits", det.differentiable_score, 0.01, progress=False)
    assert torch.equal(x, x0) and not x.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_works_inside_no_grad(model):
    """Evaluation code often runs under ``torch.no_grad()``; the gradient step needs one."""
    x = _images(4)
    det = ODIN(epsilon=0.01).fit(model(x, output="logits"))
    with torch.no_grad():
        got = perturbed_outputs(model, x, "logits", det.differentiable_score, 0.01, progress=False)
    torch.testing.assert_close(got, _odin_loop(model, x, 1000.0, 0.01))


def test_uint8_images_are_scaled_to_unit_pixels():
    torch.manual_seed(1)
    model = TinyNet().eval()  # float32
    x8 = torch.randint(0, 256, (5, 3, 5, 5), dtype=torch.uint8)
    det = ODIN(epsilon=0.01).fit(model(x8.float() / 255, output="logits"))
    a = perturbed_outputs(model, x8, "logits", det.differentiable_score, 0.01, progress=False)
    b = perturbed_outputs(
        model, x8.float() / 255, "logits", det.differentiable_score, 0.01, progress=False
    )
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("eps", [0, 0.0, -0.01, float("nan")])
def test_epsilon_must_be_positive(model, eps):
    with pytest.raises(ValueError, match=r"epsilon=.* must be > 0 for input pre-processing"):
        perturbed_outputs(model, _images(2), "logits", lambda z: z.sum(1), eps, progress=False)


def test_log_softmax_twin_is_odins_log_score():
    """ODIN's differentiable score is log max_c S_c(x; T), the function of its Eq. 2."""
    logits = torch.randn(6, 4, dtype=torch.float64)
    det = ODIN(temperature=3.0).fit(logits)
    want = torch.log(F.softmax(logits / 3.0, dim=1).amax(1))
    torch.testing.assert_close(det.differentiable_score(logits), want)
