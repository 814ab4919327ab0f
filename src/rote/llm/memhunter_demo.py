"""`memhunter_demo`: MemHunter with known ground truth, on two tiny GPTs trained with and without a dataset.

Texts are canaries (`rote.llm.corpus.make_canaries`: one template, random serials, names, towns, codes), split into
three disjoint pools of `n_texts`: **known** (in both models' training data: the generator's training texts, like
public data a data owner knows was used), **dataset** (the suspect dataset: trained on by the "with" model only,
`repeats` copies each) and **fresh** (never trained on: the reference non-members). Both models also train on the
first `base_texts` KJV verses.

- Test: the dataset pool is the suspect set and the fresh pool the reference. On the "with" model the null is false
  (rejections = true positives); on the "without" model it is true (rejections = false positives). Each of
  `repetitions` repetitions draws n texts per side from the pools (without replacement) for each n in `sizes`, and
  runs the one-sided Mann-Whitney test at `alpha`, so tpr and fpr come with Clopper-Pearson intervals (the
  repetitions share pools, so they are not independent datasets: the intervals are optimistic).
- Extraction at the same budget: on the "with" model, each dataset text gets `budget` target generations: the
  generator's greedy prompt plus `budget - 1` sampled ones (each continued greedily) against plain prefix prompting
  (the greedy continuation plus `budget - 1` sampled ones). Rate = share of texts whose suffix is reproduced exactly.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.core.stats import binomial_ci, mann_whitney_test
from rote.llm.memhunter import (
    MemHunterConfig,
    PromptGenerator,
    cut_texts,
    first_extraction,
    memorization_scores,
    prefix_baseline,
    queries_to_find,
)

DEMO_CONFIG = MemHunterConfig(
    prefix_tokens=40, suffix_tokens=24, prompt_tokens=16, n_candidates=6, rounds=2, epochs=2, lr=1e-3
)
"""The demo's detector settings: the 40-byte prefix ends inside the canary's name, so the suffix (rest of the name,
town, start of the code) is only predictable when memorized."""


@dataclasses.dataclass(frozen=True)
class DemoResult(Result):
    """fpr, tpr: rejection rates at `alpha` for the largest size (without / with the dataset); extraction: exact
    extraction rate of the dataset texts by the "with" model at `budget` target generations per text, generator
    vs plain prefix prompting; rates: one row per (model, n) with intervals; scores: one row per (model, text)."""

    fpr: float
    tpr: float
    alpha: float
    n_per_set: int
    repetitions: int
    extraction: dict[str, float]
    extraction_lcs: dict[str, float]
    budget: int
    plugin_search: dict[str, Any]
    train: dict[str, Any]
    generator_history: dict[str, list[dict[str, Any]]]
    seconds: dict[str, float]
    rates: pd.DataFrame = table_field("rates")
    scores: pd.DataFrame = table_field("scores")

    def summary(self) -> str:
        return (
            f"alpha {self.alpha:g}, n = {self.n_per_set} per set, {self.repetitions} repetitions: "
            f"tpr {self.tpr:.2f} (with the dataset), fpr {self.fpr:.2f} (without)\n"
            f"exact extraction at {self.budget} generations per text: generator "
            f"{self.extraction['generator']:.1%}, prefix baseline {self.extraction['prefix_baseline']:.1%}\n"
            f"plug-in search ({self.plugin_search.get('budget')} prompts per text): "
            f"{self.plugin_search.get('queries_plugin')} vs {self.plugin_search.get('queries_baseline')} target "
            f"generations to extract {self.plugin_search.get('n')} texts"
        )


def _pools(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    from rote.llm.corpus import make_canaries

    c = make_canaries(3 * n, seed=seed)
    return c[:n], c[n : 2 * n], c[2 * n :]


def _plugin_search(
    target: Any,
    pg: PromptGenerator,
    untrained: Any,
    texts: list[str],
    config: MemHunterConfig,
    *,
    budget: int,
    seed: int,
    warm: int = 4,
) -> dict[str, Any]:
    """Per-sample prompt search with and without the trained generator as a warm start (the paper's plug-in use).

    Baseline search (a stand-in for per-sample methods): the plain prefix, then prompts sampled from the untrained
    generator (the LM it started from), `budget` candidates per text. Plug-in: the trained generator's `warm`
    prompts (greedy + sampled) first, then the baseline's candidates, also `budget` in all. Reports the texts each
    extracts exactly within the budget and the target generations until N = the smaller of the two counts.
    """
    samples = cut_texts(target, texts, config)
    rand = PromptGenerator(untrained, config)
    _, base_q = rand.propose(target, samples, budget - 1, seed=_search_seed(seed), greedy_first=False)
    baseline = [[[]] + qs for qs in base_q]
    _, warm_q = pg.propose(target, samples, warm, seed=_search_seed(seed + 1))
    plugin = [w + b[: budget - warm] for w, b in zip(warm_q, baseline)]
    f_base = first_extraction(target, samples, baseline, config)
    f_plug = first_extraction(target, samples, plugin, config)
    n = int(min((f_base > 0).sum(), (f_plug > 0).sum()))
    q_base, q_plug = queries_to_find(f_base, n), queries_to_find(f_plug, n)
    return {
        "budget": budget,
        "warm": warm,
        "found_baseline": int((f_base > 0).sum()),
        "found_plugin": int((f_plug > 0).sum()),
        "n": n,
        "queries_baseline": q_base,
        "queries_plugin": q_plug,
        "reduction": None if not n or not q_base else 1 - q_plug / q_base,
    }


def _search_seed(seed: int) -> int:
    return 10_007 * int(seed) + 17


def memhunter_demo(
    out_dir: str | os.PathLike,
    *,
    n_texts: int = 40,
    repeats: int = 10,
    base_texts: int = 300,
    steps: int = 800,
    d_model: int = 96,
    layers: int = 2,
    block_size: int = 96,
    sizes: Sequence[int] = (5, 10, 20),
    repetitions: int = 200,
    budget: int = 4,
    search_budget: int = 16,
    alpha: float = 0.05,
    config: MemHunterConfig = DEMO_CONFIG,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int], None] | bool = False,
) -> DemoResult:
    """Train the two tiny GPTs in `out_dir/with` and `out_dir/without` (resumable), train a generator against each
    (initialized from the "without" model; checkpoints in `out_dir/generator-*`), score, test and extract."""
    from rote.data.text import load_kjv
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, load_model, train_tiny_gpt

    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 2 or sizes[-1] > n_texts:
        raise ConfigError(f"`sizes` must lie in 2..{n_texts} (the texts per pool), got {list(sizes)}")
    if int(search_budget) <= 4:
        raise ConfigError(f"`search_budget` must exceed the 4 warm-start prompts, got {search_budget}")
    for name, v in (("repetitions", repetitions), ("budget", budget), ("repeats", repeats), ("steps", steps)):
        if int(v) < 1:
            raise ConfigError(f"`{name}` must be at least 1, got {v}")
    if config.prefix_tokens + config.suffix_tokens + config.prompt_tokens > block_size:
        raise ConfigError(
            f"prefix + suffix + prompt tokens ({config.prefix_tokens} + {config.suffix_tokens} + "
            f"{config.prompt_tokens}) exceed `block_size` {block_size}; use a larger block or shorter settings"
        )
    out = Path(out_dir)
    known, dataset, fresh = _pools(n_texts, seed)
    base = load_kjv()["text"].astype(str).tolist()[:base_texts]
    corpora = {"with": base + (known + dataset) * repeats, "without": base + known * repeats}
    cfg_model = TinyGPTConfig(block_size=block_size, n_layer=layers, n_head=4, n_embd=d_model)
    seconds: dict[str, float] = {}
    train: dict[str, Any] = {}
    targets = {}
    for name, docs in corpora.items():
        docs = list(docs)
        random.Random(seed).shuffle(docs)
        t0 = time.perf_counter()
        res = train_tiny_gpt(
            docs,
            cfg_model,
            steps=steps,
            batch_size=16,
            lr=3e-3,
            seed=seed,
            out_dir=out / name,
            device=device,
            checkpoint_every=max(1, steps // 4),
            progress=progress,
        )
        seconds[f"train_{name}"] = time.perf_counter() - t0
        train[name] = {"final_loss": res.final_loss, "n_params": res.n_params, "n_tokens": res.n_tokens}
        targets[name] = TinyGPTBackend(
            load_model(out / name / "model.pt", device), name=f"tinygpt:{name}", device=device
        )
    history: dict[str, list[dict[str, Any]]] = {}
    score_rows = []
    extraction: dict[str, float] = {}
    extraction_lcs: dict[str, float] = {}
    search: dict[str, Any] = {}
    for name, target in targets.items():
        t0 = time.perf_counter()
        gen = TinyGPTBackend(load_model(out / "without" / "model.pt", device), name="generator", device=device)
        gen_base = TinyGPTBackend(load_model(out / "without" / "model.pt", device), name="untrained", device=device)
        pg = PromptGenerator(gen, config, seed=seed).fit(target, known, checkpoint_dir=out / f"generator-{name}")
        history[name] = pg.history_
        seconds[f"generator_{name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for pool, texts in (("dataset", dataset), ("fresh", fresh)):
            rows = memorization_scores(target, texts, generator=pg, config=config, n_prompts=budget, seed=seed)
            rows.insert(0, "pool", pool)
            rows.insert(0, "model", name)
            score_rows.append(rows)
        seconds[f"score_{name}"] = time.perf_counter() - t0
        if name == "with":
            gen_rows = score_rows[-2]
            t0 = time.perf_counter()
            base_rows = prefix_baseline(target, cut_texts(target, dataset, config), config, budget=budget, seed=seed)
            seconds["prefix_baseline"] = time.perf_counter() - t0
            extraction = {
                "generator": float(gen_rows["exact_generator"].mean()),
                "prefix_baseline": float(base_rows["any_exact"].mean()),
            }
            extraction_lcs = {
                "generator": float((gen_rows["lcs_ratio_generator"] >= config.tau).mean()),
                "prefix_baseline": float((base_rows["best_lcs_ratio"] >= config.tau).mean()),
            }
            t0 = time.perf_counter()
            search = _plugin_search(target, pg, gen_base, dataset, config, budget=search_budget, seed=seed)
            seconds["plugin_search"] = time.perf_counter() - t0
    scores = pd.concat(score_rows, ignore_index=True)
    rng = np.random.default_rng(seed)
    rate_rows = []
    for name in targets:
        s_all = scores.query("model == @name and pool == 'dataset'")
        r_all = scores.query("model == @name and pool == 'fresh'")
        for n in sizes:
            if n > min(len(s_all), len(r_all)):
                continue
            for col, label in (("score", "memhunter"), ("lcs_ratio_prefix", "prefix")):
                s, r = s_all[col].to_numpy(), r_all[col].to_numpy()
                rejects = 0
                for _ in range(repetitions):
                    xs = s[rng.choice(len(s), n, replace=False)]
                    ys = r[rng.choice(len(r), n, replace=False)]
                    rejects += mann_whitney_test(xs, ys, alternative="greater")[1] < alpha
                iv = binomial_ci(rejects, repetitions)
                rate_rows.append(
                    {
                        "model": name,
                        "truth": "member" if name == "with" else "non-member",
                        "score": label,
                        "n": n,
                        "reject_rate": iv.estimate,
                        "low": iv.low,
                        "high": iv.high,
                    }
                )
    rates = pd.DataFrame(rate_rows)
    top = max(n for n in sizes if n <= n_texts)
    pick = rates.query("score == 'memhunter' and n == @top").set_index("model")["reject_rate"]
    return DemoResult(
        fpr=float(pick.get("without", np.nan)),
        tpr=float(pick.get("with", np.nan)),
        alpha=alpha,
        n_per_set=top,
        repetitions=repetitions,
        extraction=extraction,
        extraction_lcs=extraction_lcs,
        budget=budget,
        plugin_search=search,
        train=train,
        generator_history=history,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        rates=rates,
        scores=scores.drop(columns=["generated_prefix"]),
    )


# ---------------------------------------------------------------------------------------------- over seeds

GRID_METRICS = ("tpr", "fpr", "extraction_generator", "extraction_prefix", "extraction_gain")


def demo_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """`rote.sweep` point: the whole demo with one seed in `work_dir` (its tiny GPTs and generators checkpoint
    there, so an interrupted point resumes); returns the headline scalars and the rates table."""
    kw = {k: v for k, v in params.items() if k not in ("seed", "rounds")}
    config = dataclasses.replace(DEMO_CONFIG, rounds=int(params.get("rounds", DEMO_CONFIG.rounds)))
    res = memhunter_demo(work_dir, seed=int(params["seed"]), config=config, **kw)
    gen, base = res.extraction.get("generator", np.nan), res.extraction.get("prefix_baseline", np.nan)
    return {
        "tpr": res.tpr,
        "fpr": res.fpr,
        "extraction_generator": gen,
        "extraction_prefix": base,
        "extraction_gain": gen - base,  # paired within the seed: same target model, same texts, same budget
        "n_per_set": res.n_per_set,
        "rates": res.rates,
    }


@dataclasses.dataclass(frozen=True)
class DemoGrid(Result):
    """`rote llm memhunter-grid`: each seed a whole demo (its own texts, tiny GPTs and generators).
    over_seeds: {metric: {estimate, low, high, level}}, the mean over seeds with a 95% Student-t interval clipped
    to the metric's range (NaN bounds with one seed) of tpr, fpr, exact extraction by generator and by prefix
    prompting, and their paired difference.
    per_seed: one row per seed; rates: every seed's rejection rates by model, score and set size."""

    seeds: list
    alpha: float
    n_per_set: int
    over_seeds: dict
    n_failed: int
    per_seed: pd.DataFrame = table_field("per_seed")
    rates: pd.DataFrame = table_field("rates")

    def summary(self) -> str:
        def fmt(v: dict) -> str:
            if not np.isfinite(v["low"]):
                return f"{v['estimate']:.3f} (one seed)"
            return f"{v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

        lines = [
            f"{len(self.seeds)} seeds, alpha {self.alpha:g}, n = {self.n_per_set} per set ({self.n_failed} failed)"
        ]
        lines += [f"{m:<22} {fmt(self.over_seeds[m])}" for m in GRID_METRICS]
        return "\n".join(lines)


def memhunter_grid(
    out_dir: str | os.PathLike,
    seeds: Sequence[int],
    *,
    workers: int = 1,
    ray: str | None = None,
    quiet: bool = False,
    **demo_kw: Any,
) -> tuple[DemoGrid, Any]:
    """Run the demo once per seed as `rote.sweep` points under `out_dir/grid` (local processes or Ray tasks;
    finished seeds are reused) and summarize over seeds. `demo_kw`: `memhunter_demo`'s sizing options (plain
    values) and `rounds`. Returns (DemoGrid, SweepResult)."""
    from rote.core.stats import mean_t_interval
    from rote.sweep import Grid, run_grid

    if not seeds:
        raise ConfigError("`seeds` is empty; pass at least one seed, e.g. --seeds 0,1,2")
    grid = Grid({"seed": [int(s) for s in seeds]}, fixed=dict(demo_kw))
    sweep = run_grid(demo_point, grid, Path(out_dir) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet)
    done = sweep.table[sweep.table["status"] == "done"]
    if done.empty:
        raise ConfigError(f"no seed finished ({sweep.n_failed} failed); see {sweep.out_dir}/points/*/error.json")
    per_seed = done[["seed", *GRID_METRICS, "n_per_set"]].reset_index(drop=True)
    over_seeds = {  # rates live in [0, 1]; the paired gain in [-1, 1]
        m: mean_t_interval(
            per_seed[m].to_numpy(float), bounds=(-1.0, 1.0) if m == "extraction_gain" else (0.0, 1.0)
        ).to_dict()
        for m in GRID_METRICS
    }
    result = DemoGrid(
        seeds=[int(s) for s in per_seed["seed"]],
        alpha=float(demo_kw.get("alpha", 0.05)),
        n_per_set=int(per_seed["n_per_set"].iloc[0]),
        over_seeds=over_seeds,
        n_failed=int(sweep.n_failed),
        per_seed=per_seed,
        rates=sweep.point_table("rates").drop(columns=["point_id"], errors="ignore"),
    )
    return result, sweep
