"""PGD: stays in the eps-ball and in [0, 1], raises the loss, projects L2 correctly, refuses bad budgets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rote.adversarial.attacks import check_attack, pgd, project
from rote.core.errors import ConfigError
from rote.nets import SmallCNN


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = SmallCNN(1, 10, image_size=8, width=4, hidden=16, seed=0).eval()
    x = torch.rand(16, 1, 8, 8)
    y = torch.randint(0, 10, (16,))
    return model, x, y


@pytest.mark.parametrize("norm, eps, step", [("linf", 0.1, 0.03), ("l2", 0.5, 0.2)])
def test_pgd_stays_in_the_ball_and_raises_the_loss(model_and_data, norm, eps, step):
    model, x, y = model_and_data
    g = torch.Generator().manual_seed(0)
    adv = pgd(model, x, y, eps=eps, step_size=step, steps=10, norm=norm, generator=g)
    d = (adv - x).flatten(1)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        before = F.cross_entropy(model(x), y, reduction="none")
        after = F.cross_entropy(model(adv), y, reduction="none")
    assert (after >= before - 1e-6).float().mean() >= 0.9 and after.mean() > before.mean()
    # deterministic for a seeded generator, and the model's parameters get no gradient
    again = pgd(model, x, y, eps=eps, step_size=step, steps=10, norm=norm, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adv, again)
    assert all(p.grad is None for p in model.parameters())


def test_l2_projection_hand_worked():
    d = torch.tensor([[[[3.0, 4.0]]], [[[0.3, 0.4]]]])  # norms 5 and 0.5
    p = project(d, 1.0, "l2")
    assert torch.allclose(p[0].flatten(), torch.tensor([0.6, 0.8]))
    assert torch.equal(p[1], d[1])  # inside the ball: unchanged
    assert torch.equal(project(torch.tensor([[0.5, -0.2]]), 0.3, "linf"), torch.tensor([[0.3, -0.2]]))


def test_pgd_without_budget_returns_the_input(model_and_data):
    model, x, y = model_and_data
    assert torch.equal(pgd(model, x, y, eps=0.0, step_size=0.0, steps=5), x)
    assert torch.equal(pgd(model, x, y, eps=0.1, step_size=0.03, steps=0), x)


@pytest.mark.parametrize(
    "eps, step, steps, norm, match",
    [
        (1.5, 0.1, 5, "linf", "`eps` must be in \\[0, 1\\]"),
        (-0.1, 0.1, 5, "l2", "`eps` must be >= 0"),
        (0.1, 0.5, 5, "linf", "`step_size` must be in"),
        (0.1, 0.0, 5, "linf", "`step_size`"),
        (0.1, 0.03, -1, "linf", "`steps`"),
        (0.1, 0.03, 5, "l1", "`norm`"),
    ],
)
def test_attack_budgets_out_of_range_are_refused(eps, step, steps, norm, match):
    with pytest.raises(ConfigError, match=match):
        check_attack(eps, step, steps, norm)
