"""Batch image augmentation on tensors: every sample gets its own random parameters, in one vectorized call.

All functions take x: (N, C, H, W) float in [0, 1] (uint8 is converted, /255) on any device and return float
tensors on that device. Random parameters are drawn on the CPU from a `torch.Generator` (or an int seed) and then
moved to x's device, so a seed gives the same augmentation on CPU and GPU. `return_params=True` also returns what
was drawn, so callers (and tests) can see which crop or flip each sample got.

The operations follow torchvision's definitions (RandomResizedCrop, RandomCrop with padding, RandomHorizontalFlip,
ColorJitter, RandomGrayscale); one documented difference: ColorJitter applies brightness, contrast, saturation, hue
in this fixed order instead of a random order per call. `simclr_augment` is the SimCLR preset (Chen et al. 2020,
Appendix A): random resized crop, flip, colour jitter (p=0.8), grayscale (p=0.2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError

Generator = torch.Generator | int

GRAY_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B (as PIL's and torchvision's grayscale)."""


def _gen(generator: Generator) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise ConfigError(f"pass a torch.Generator or an int seed, got {type(generator).__name__}")
    return torch.Generator().manual_seed(generator)


def _float(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise DataError(
            f"augmentation needs a (N, C, H, W) tensor, got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.dtype.is_floating_point:
        raise DataError(f"augmentation needs uint8 or float images, got {x.dtype}")
    return x


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _size(size: int | tuple[int, int] | None, x: torch.Tensor) -> tuple[int, int]:
    if size is None:
        return int(x.shape[2]), int(x.shape[3])
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise ConfigError(f"output size must be positive, got {size}")
    return int(h), int(w)


# ---------------------------------------------------------------------------------------------- geometry


def random_resized_crop(
    x: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    *,
    generator: Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    return_params: bool = False,
):
    """Crop a random box of each image (area fraction in `scale`, aspect w/h in `ratio`, log-uniform) and resize it
    bilinearly to `size` (default: the input size). Returns (N, C, h, w) float.

    As torchvision, up to 10 boxes are drawn per image and the first that fits is used; when none fits the whole
    image is used. params: (N, 4) int64 boxes (top, left, height, width).
    """
    x = _float(x)
    gen = _gen(generator)
    if not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
        raise ConfigError(f"need 0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1], got {scale}, {ratio}")
    n, _, H, W = x.shape
    out_h, out_w = _size(size, x)
    tries = 10
    area = H * W * _uniform(n * tries, scale[0], scale[1], gen).view(n, tries)
    aspect = torch.exp(_uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), gen)).view(n, tries)
    w = torch.round(torch.sqrt(area * aspect)).long()
    h = torch.round(torch.sqrt(area / aspect)).long()
    ok = (w > 0) & (h > 0) & (w <= W) & (h <= H)
    first = torch.where(ok.any(1), ok.long().argmax(1), torch.full((n,), -1))
    rows = torch.arange(n)
    bh = torch.where(first >= 0, h[rows, first.clamp(min=0)], torch.full((n,), H))
    bw = torch.where(first >= 0, w[rows, first.clamp(min=0)], torch.full((n,), W))
    # offsets uniform over the valid integers 0..H-h (as torch.randint(0, H - h + 1))
    top = (torch.rand(n, generator=gen, dtype=torch.float64) * (H - bh + 1)).floor().long()
    left = (torch.rand(n, generator=gen, dtype=torch.float64) * (W - bw + 1)).floor().long()
    boxes = torch.stack([top, left, bh, bw], 1)
    # An affine grid maps the output's normalized [-1, 1] square onto the box (align_corners=False: edges to edges).
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = bw / W
    theta[:, 0, 2] = (2 * left + bw) / W - 1
    theta[:, 1, 1] = bh / H
    theta[:, 1, 2] = (2 * top + bh) / H - 1
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), [n, x.shape[1], out_h, out_w], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (out, boxes) if return_params else out


def random_crop(
    x: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    *,
    generator: Generator,
    padding: int = 4,
    fill: float = 0.0,
    return_params: bool = False,
):
    """Pad every side by `padding` pixels of value `fill`, then cut a random `size` window (default: the input
    size), as CIFAR training does (padding 4). Exact pixel copies, no interpolation. Returns (N, C, h, w) float;
    params: (N, 2) int64 offsets (top, left) in the padded image.
    """
    x = _float(x)
    gen = _gen(generator)
    if padding < 0:
        raise ConfigError(f"padding must be >= 0, got {padding}")
    n, c, H, W = x.shape
    h, w = _size(size, x)
    Hp, Wp = H + 2 * padding, W + 2 * padding
    if h > Hp or w > Wp:
        raise ConfigError(f"crop {h}x{w} is larger than the padded image {Hp}x{Wp}")
    padded = F.pad(x, (padding,) * 4, value=fill) if padding else x
    top = torch.randint(0, Hp - h + 1, (n,), generator=gen)
    left = torch.randint(0, Wp - w + 1, (n,), generator=gen)
    dev = x.device
    rows = (top.to(dev)[:, None] + torch.arange(h, device=dev))[:, None, :, None]  # (N, 1, h, 1)
    cols = (left.to(dev)[:, None] + torch.arange(w, device=dev))[:, None, None, :]  # (N, 1, 1, w)
    out = padded[
        torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols
    ]
    return (out, torch.stack([top, left], 1)) if return_params else out


def random_horizontal_flip(x: torch.Tensor, p: float = 0.5, *, generator: Generator, return_params: bool = False):
    """Mirror each image left-right with probability `p`. params: (N,) bool, True where flipped."""
    x = _float(x)
    flip = torch.rand(x.shape[0], generator=_gen(generator)) < p
    out = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    return (out, flip) if return_params else out


# ---------------------------------------------------------------------------------------------- colour


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of RGB images (GRAY_WEIGHTS); a 1-channel batch is returned as it is."""
    x = _float(x)
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise DataError(f"grayscale needs 1 or 3 channels, got {x.shape[1]}")
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def random_grayscale(x: torch.Tensor, p: float = 0.2, *, generator: Generator, return_params: bool = False):
    """Replace each RGB image by its luma in all 3 channels with probability `p`. params: (N,) bool."""
    x = _float(x)
    chosen = torch.rand(x.shape[0], generator=_gen(generator)) < p
    out = torch.where(chosen.to(x.device)[:, None, None, None], grayscale(x).expand_as(x), x)
    return (out, chosen) if return_params else out


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the colour circle), as `colorsys`."""
    r, g, b = x.unbind(1)
    maxc, arg = x.max(1)  # arg: the first channel holding the max, the precedence colorsys uses (R, then G, B)
    span = maxc - x.min(1).values
    gray = span == 0
    safe = torch.where(gray, torch.ones_like(span), span)  # hue and saturation are 0 for gray pixels
    s = torch.where(gray, torch.zeros_like(span), span / torch.where(maxc == 0, torch.ones_like(maxc), maxc))
    num = torch.stack([g - b, b - r, r - g], 1).gather(1, arg.unsqueeze(1)).squeeze(1)
    h = torch.where(gray, torch.zeros_like(span), ((2.0 * arg + num / safe) / 6.0) % 1.0)
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_hsv`: (N, 3, H, W) HSV in [0, 1] -> RGB."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # channel value = v - v*s*clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6 and n = 5, 3, 1 for R, G, B:
    # the closed form of the six-sector table, without building it
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = (n + h * 6.0) % 6.0
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * a + (1 - factor) * b, clamped to [0, 1]; factor: (N,)."""
    f = factor.view(-1, 1, 1, 1)
    return (f * a + (1 - f) * b).clamp_(0.0, 1.0)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    *,
    p: float = 1.0,
    generator: Generator,
    return_params: bool = False,
):
    """Random brightness, contrast, saturation and hue changes per image (torchvision ColorJitter), applied to
    each image with probability `p`.

    Factors are uniform in [1 - b, 1 + b] (brightness, contrast, saturation; clipped at 0) and hue shifts uniform
    in [-hue, hue] of the colour circle (hue <= 0.5). Brightness scales pixels; contrast blends with the image's
    mean luma; saturation blends with the per-pixel luma; hue rotates in HSV. Saturation and hue leave 1-channel
    images unchanged. params: (N, 5) float64 columns applied (0/1), brightness, contrast, saturation, hue.
    """
    x = _float(x)
    gen = _gen(generator)
    for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if v < 0:
            raise ConfigError(f"{name} must be >= 0, got {v}")
    if not 0 <= hue <= 0.5:
        raise ConfigError(f"hue must lie in [0, 0.5], got {hue}")
    n = x.shape[0]
    applied = torch.rand(n, generator=gen, dtype=torch.float64) < p
    fb = _uniform(n, max(0.0, 1 - brightness), 1 + brightness, gen)
    fc = _uniform(n, max(0.0, 1 - contrast), 1 + contrast, gen)
    fs = _uniform(n, max(0.0, 1 - saturation), 1 + saturation, gen)
    fh = _uniform(n, -hue, hue, gen)
    # images not chosen get neutral factors, so one vectorized pass serves the whole batch
    fb, fc, fs = (torch.where(applied, f, torch.ones_like(f)) for f in (fb, fc, fs))
    fh = torch.where(applied, fh, torch.zeros_like(fh))
    params = torch.stack([applied.double(), fb, fc, fs, fh], 1)
    dev, dt = x.device, x.dtype
    fb, fc, fs, fh = (f.to(device=dev, dtype=dt) for f in (fb, fc, fs, fh))
    out = (x * fb.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    mean = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
    out = _blend(out, mean, fc)
    if out.shape[1] == 3:
        out = _blend(out, grayscale(out), fs)
        if hue > 0:
            hsv = rgb_to_hsv(out)
            hsv = torch.cat([((hsv[:, :1] + fh.view(-1, 1, 1, 1)) % 1.0), hsv[:, 1:]], 1)
            out = torch.where(applied.to(dev)[:, None, None, None], hsv_to_rgb(hsv), out)
    return (out, params) if return_params else out


# ---------------------------------------------------------------------------------------------- presets


def crop_flip(x: torch.Tensor, *, generator: Generator, padding: int = 4) -> torch.Tensor:
    """The standard CIFAR training augmentation: random crop after `padding` zero pixels, then a random flip."""
    gen = _gen(generator)
    return random_horizontal_flip(random_crop(x, padding=padding, generator=gen), generator=gen)


def simclr_augment(
    x: torch.Tensor,
    *,
    generator: Generator,
    size: int | tuple[int, int] | None = None,
    strength: float = 0.5,
    scale: tuple[float, float] = (0.08, 1.0),
) -> torch.Tensor:
    """One SimCLR view of every image (Chen et al. 2020, Appendix A; CIFAR setting, no blur): random resized crop
    (area `scale`, aspect 3/4..4/3) to `size` (default: input size), horizontal flip, colour jitter with
    brightness/contrast/saturation 0.8*s and hue 0.2*s applied with p = 0.8, grayscale with p = 0.2.

    Call it twice with the same generator for the two views of a positive pair. Returns (N, C, h, w) float.
    """
    gen = _gen(generator)
    out = random_resized_crop(x, size, generator=gen, scale=scale)
    out = random_horizontal_flip(out, generator=gen)
    s = strength
    out = color_jitter(out, 0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5), p=0.8, generator=gen)
    if out.shape[1] == 3:
        out = random_grayscale(out, p=0.2, generator=gen)
    return out
