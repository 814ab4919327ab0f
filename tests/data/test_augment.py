"""Batch augmentation: each operation against an independent computation, seeds, devices."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.data.augment import (
    GRAY_WEIGHTS,
    color_jitter,
    crop_flip,
    hsv_to_rgb,
    random_crop,
    random_grayscale,
    random_horizontal_flip,
    random_resized_crop,
    rgb_to_hsv,
    simclr_augment,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def batch(n=8, c=3, h=12, w=10, seed=0, device="cpu") -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_flip_equals_torch_flip_where_chosen(device):
    x = batch(400, device=device)
    out, flipped = random_horizontal_flip(x, 0.3, generator=1, return_params=True)
    assert out.device == x.device
    f = flipped.to(device)
    assert torch.equal(out[f], torch.flip(x[f], dims=[3])) and torch.equal(out[~f], x[~f])
    assert 80 <= int(flipped.sum()) <= 160  # Binomial(400, 0.3): mean 120, sd 9.2
    again = random_horizontal_flip(x, 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # an int seed and a Generator seeded alike agree


@pytest.mark.parametrize("device", DEVICES)
def test_random_crop_is_a_window_of_the_padded_image(device):
    x = batch(6, h=8, w=9, device=device)
    out, offsets = random_crop(x, padding=3, fill=0.5, generator=0, return_params=True)
    assert out.shape == x.shape
    padded = F.pad(x, (3, 3, 3, 3), value=0.5)
    for k, (t, left) in enumerate(offsets.tolist()):
        assert 0 <= t <= 6 and 0 <= left <= 6
        assert torch.equal(out[k], padded[k, :, t : t + 8, left : left + 9])
    assert offsets.unique(dim=0).shape[0] > 1  # offsets differ between samples
    small = random_crop(x, size=(4, 5), padding=0, generator=2)
    assert small.shape == (6, 3, 4, 5)
    assert torch.equal(random_crop(x, padding=0, generator=3), x)  # nothing to move
    with pytest.raises(ConfigError, match="crop 20x9 is larger than the padded image 14x15"):
        random_crop(x, size=(20, 9), padding=3, generator=0)


@pytest.mark.parametrize("device", DEVICES)
def test_random_resized_crop_boxes_and_exact_resampling(device):
    x = batch(5, h=32, w=32, device=device)
    same = random_resized_crop(x, generator=0, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(same, x, atol=1e-6)  # the whole image resized to its own size
    out, boxes = random_resized_crop(x, 16, generator=1, scale=(0.25, 0.25), ratio=(1.0, 1.0), return_params=True)
    assert out.shape == (5, 3, 16, 16) and boxes[:, 2:].tolist() == [[16, 16]] * 5
    for k, (t, left, h, w) in enumerate(boxes.tolist()):  # a 16x16 box resized to 16x16 is the box itself
        assert torch.allclose(out[k], x[k, :, t : t + h, left : left + w], atol=1e-5)
    big, boxes = random_resized_crop(batch(300, h=20, w=30, device=device), (8, 8), generator=2, return_params=True)
    assert big.shape == (300, 3, 8, 8)
    t, left, h, w = boxes.T
    assert (t >= 0).all() and (left >= 0).all() and (t + h <= 20).all() and (left + w <= 30).all()
    frac = (h * w).double() / 600
    assert frac.min() >= 0.06 and frac.max() <= 1.0 and frac.std() > 0.1  # area fraction in 0.08..1 (rounded)


def test_grayscale_uses_luma_weights():
    x = torch.zeros(3, 3, 2, 2)
    x[0, 0] = 1.0  # pure red
    x[1, 1] = 1.0  # pure green
    x[2] = torch.tensor([0.2, 0.4, 0.6]).view(3, 1, 1)
    out = random_grayscale(x, p=1.0, generator=0)
    want = [GRAY_WEIGHTS[0], GRAY_WEIGHTS[1], 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]
    for k in range(3):
        assert torch.allclose(out[k], torch.full((3, 2, 2), want[k]), atol=1e-6)
    y = batch(50)
    out, chosen = random_grayscale(y, p=0.5, generator=4, return_params=True)
    assert torch.equal(out[~chosen], y[~chosen])
    assert torch.allclose(out[chosen][:, 0], out[chosen][:, 2]) and 10 < int(chosen.sum()) < 40


def test_hsv_conversion_matches_colorsys():
    x = batch(2, h=5, w=6, seed=3)
    x[0, :, 0, 0] = 0.5  # a gray pixel: hue 0, saturation 0
    hsv = rgb_to_hsv(x)
    for n, i, j in [(0, 0, 0), (0, 2, 3), (1, 4, 5), (1, 1, 0)]:
        want = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
        assert np.allclose(hsv[n, :, i, j].tolist(), want, atol=1e-6)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-6)


def test_color_jitter_factors_match_formulas():
    x = batch(6, seed=5)
    gray = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).unsqueeze(1)  # noqa: E731
    out, params = color_jitter(x, 0.5, 0, 0, 0, generator=0, return_params=True)
    fb = params[:, 1].float().view(-1, 1, 1, 1)
    assert torch.allclose(out, (x * fb).clamp(0, 1), atol=1e-6) and params[:, 1].std() > 0
    out, params = color_jitter(x, 0, 0.5, 0, 0, generator=1, return_params=True)
    fc = params[:, 2].float().view(-1, 1, 1, 1)
    mean = gray(x).mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out, (fc * x + (1 - fc) * mean).clamp(0, 1), atol=1e-6)
    out, params = color_jitter(x, 0, 0, 0.5, 0, generator=2, return_params=True)
    fs = params[:, 3].float().view(-1, 1, 1, 1)
    assert torch.allclose(out, (fs * x + (1 - fs) * gray(x)).clamp(0, 1), atol=1e-6)
    out, params = color_jitter(x, 0, 0, 0, 0.3, generator=3, return_params=True)
    for n, i, j in [(0, 0, 0), (3, 5, 7), (5, 11, 9)]:
        h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
        want = colorsys.hsv_to_rgb((h + float(params[n, 4])) % 1.0, s, v)
        assert np.allclose(out[n, :, i, j].tolist(), want, atol=1e-5)
    none, params = color_jitter(x, 0.5, 0.5, 0.5, 0.2, p=0.0, generator=4, return_params=True)
    assert torch.allclose(none, x, atol=1e-6) and params[:, 0].sum() == 0
    with pytest.raises(ConfigError, match=r"hue must lie in \[0, 0.5\]"):
        color_jitter(x, hue=0.7, generator=0)


@pytest.mark.parametrize("device", DEVICES)
def test_simclr_views_are_seeded_and_in_range(device):
    x = (batch(16, h=32, w=32, device=device) * 255).to(torch.uint8)
    g = torch.Generator().manual_seed(7)
    v1, v2 = simclr_augment(x, generator=g), simclr_augment(x, generator=g)
    assert v1.shape == (16, 3, 32, 32) and v1.dtype == torch.float32 and v1.device == x.device
    assert 0.0 <= float(v1.min()) and float(v1.max()) <= 1.0
    assert not torch.allclose(v1, v2)  # two views of a positive pair differ
    g2 = torch.Generator().manual_seed(7)
    assert torch.equal(simclr_augment(x, generator=g2), v1)
    assert simclr_augment(x[:, :1], generator=0, size=24).shape == (16, 1, 24, 24)
    assert crop_flip(x, generator=0).shape == x.shape


@pytest.mark.gpu  # `make test-gpu` on a machine with a CUDA GPU; deselected by `make test`
def test_same_seed_same_views_on_cpu_and_gpu():
    x = batch(32, h=32, w=32)
    cpu = simclr_augment(x, generator=11)
    gpu = simclr_augment(x.cuda(), generator=11)
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


def test_bad_inputs():
    with pytest.raises(DataError, match=r"augmentation needs a \(N, C, H, W\) tensor, got \(3, 4, 4\)"):
        random_horizontal_flip(torch.zeros(3, 4, 4), generator=0)
    with pytest.raises(DataError, match="uint8 or float images, got torch.int64"):
        random_horizontal_flip(torch.zeros(1, 3, 4, 4, dtype=torch.int64), generator=0)
    with pytest.raises(ConfigError, match="pass a torch.Generator or an int seed"):
        random_horizontal_flip(torch.zeros(1, 3, 4, 4), generator=None)
