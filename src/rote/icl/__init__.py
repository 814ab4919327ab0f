"""In-context learning: the transition from memorization (in-weights learning) to generalization (in-context
learning) in small transformers (Nguyen and Reddy, ICLR 2025; the task of Reddy, ICLR 2024).

from rote.icl import BinaryTask, train_icl
run = train_icl(BinaryTask(K=1024, N=8), seeds=range(8), steps=2500, lr=0.1, hidden=128)
run.per_seed     # final ICL / ICL2 / IWL accuracy, t_icl, transient, per seed

Modules: `task` (generators and evaluation sets), `models` (batched networks), `train` (multi-seed training, the
stand-alone MLP), `analysis` (K*, exponents, t_ICL, bimodality), `experiment` (sweeps through rote.sweep),
`report`, `cli`. See docs/icl.md.
"""

from rote.icl.analysis import bimodality, exponent_fit, fit_sigmoid, k_star, nu_fit, t_icl_stats
from rote.icl.experiment import ICLAnalysis, analyze_sweep, memorization_scaling, run_sweep, sweep_grids
from rote.icl.models import ICLNet, MLPNet
from rote.icl.task import BinaryTask, ReddyTask, make_task
from rote.icl.train import ICLRun, MemorizationRun, t_icl, train_icl, train_mlp, transience

__all__ = [
    "BinaryTask",
    "ICLAnalysis",
    "ICLNet",
    "ICLRun",
    "MLPNet",
    "MemorizationRun",
    "ReddyTask",
    "analyze_sweep",
    "bimodality",
    "exponent_fit",
    "fit_sigmoid",
    "k_star",
    "make_task",
    "memorization_scaling",
    "nu_fit",
    "run_sweep",
    "sweep_grids",
    "t_icl",
    "t_icl_stats",
    "train_icl",
    "train_mlp",
    "transience",
]
