"""Memorization detection in diffusion models from the curvature of the learned log density (Jeon, Kim, No;
ICML 2025, "Understanding Memorization in Generative Models via Sharpness in Probability Landscapes").

- `measure`: the score interface, batched Hessians (`torch.func`), full spectra, Arnoldi / Lanczos leading
  eigenvalues, Hutchinson traces, and the per-sample statistics (-tr H, ||s||^2, ||H s||^2, eigenvalues below a
  threshold, the paper's ||H_delta s_delta||^2 and Wen et al.'s ||s_delta||).
- `diffusion`: a small DDPM with classifier-free guidance and the second-order denoising score-matching loss.
- `experiment`: the paper's toy and MNIST setups, nearest-neighbour labels, detection.
- `tabular`: the same measurements for rote's TabDDPM (its Gaussian part; the delta statistics for a class-
  conditional TabDDPM) and the TabDDPM-on-Adult setup (`run_tabular`).
"""

from rote.sharpness.diffusion import DDPM, linear_alphas_cumprod
from rote.sharpness.experiment import (
    MNIST_PRESET,
    TOY_PRESET,
    SharpnessResult,
    detection,
    evaluate,
    fashion_data,
    mnist_data,
    nn_ratio,
    run_mnist,
    run_toy,
    score_generations,
    toy_data,
)
from rote.sharpness.measure import (
    STATISTICS,
    DimensionTooLargeError,
    EpsilonScore,
    NonFiniteScoreError,
    NotDifferentiableError,
    ScoreModel,
    arnoldi,
    delta_statistics,
    hessian,
    hessian_loop,
    hutchinson_trace,
    hvp,
    lanczos,
    leading_eigenvalues,
    score,
    sharpness_statistics,
    spectrum,
)
from rote.sharpness.tabular import TABULAR_PRESET, TabDDPMScore, run_tabular, sample_with_trajectory, score_tabddpm

__all__ = [
    "DDPM",
    "MNIST_PRESET",
    "STATISTICS",
    "TABULAR_PRESET",
    "TOY_PRESET",
    "DimensionTooLargeError",
    "EpsilonScore",
    "NonFiniteScoreError",
    "NotDifferentiableError",
    "ScoreModel",
    "SharpnessResult",
    "TabDDPMScore",
    "arnoldi",
    "delta_statistics",
    "detection",
    "evaluate",
    "hessian",
    "hessian_loop",
    "hutchinson_trace",
    "hvp",
    "lanczos",
    "leading_eigenvalues",
    "linear_alphas_cumprod",
    "fashion_data",
    "mnist_data",
    "nn_ratio",
    "run_mnist",
    "run_tabular",
    "run_toy",
    "sample_with_trajectory",
    "score",
    "score_generations",
    "score_tabddpm",
    "sharpness_statistics",
    "spectrum",
    "toy_data",
]
