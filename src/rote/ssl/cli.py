"""`rote ssl ...`: train SSL and supervised encoders, localize memorization per layer and unit, prune by UnitMem.
Each command parses its options, calls the library and ends with `RunFolder.finish`.

train     one encoder (SimCLR or supervised) on the split protocol: role f (shared + candidate) or g (shared +
          independent); writes encoder.pt (architecture, weights, split) and resumable checkpoints
localize  LayerMem / delta-LayerMem / UnitMem / ClassMem of f against g on f's candidates
prune     prune the top / random / bottom fraction of units by UnitMem and re-train a linear probe
finetune  fine-tune the k most-memorizing layers (by LayerMem) versus the last k and random k, with a linear head
demo      all of it at CPU scale: f and g on a Fashion-MNIST subset, localize, prune, fine-tune
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.errors import ConfigError, DataError

app = typer.Typer(
    help="Memorization in SSL vision encoders (Wang et al., NeurIPS 2024): train, localize, prune, finetune, demo.",
    no_args_is_help=True,
)

_OUT = typer.Option(..., "--out", help="Run folder (config.json, results.json, *.parquet, plots, report.html).")
_FORCE = typer.Option(False, "--force", help="Replace the results of a finished run in --out.")
_QUIET = typer.Option(False, "--quiet", help="No progress bar and no summary.")
_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
_SEED = typer.Option(0, "--seed", help="Seed of the augmentations, the splits and the initial weights.")
_DATA = typer.Option(
    "fashion-mnist",
    "--data",
    help="fashion-mnist, mnist-5k, digits, cifar10, cifar100, svhn, stl10 or folder (the last five read --root).",
)
_ROOT = typer.Option(
    None, "--root", help="Folder (or file) of a user's dataset (cifar10, cifar100, svhn, stl10, folder)."
)
_LAYERS = typer.Option(None, "--layers", help="Layers, comma-separated (default: all of the net's layers).")
_THRESH = typer.Option(0.5, "--unit-threshold", help="UnitMem above which a unit counts as highly memorizing.")
_FT_K = typer.Option(
    2, "--finetune-k", help="Fine-tune this many layers (highest LayerMem / last / random) on the probe images; 0: no."
)
_FT_EPOCHS = typer.Option(5, "--finetune-epochs", help="Epochs of each fine-tuning run (demo).")


def _device(device: str) -> str:
    from rote.core.device import resolve_device

    return str(resolve_device(device))


def _layers(text: Optional[str]) -> Optional[list[str]]:
    from rote.core.cli import split_list

    return split_list([text]) if text else None


def _seed_list(seeds: str) -> list[int]:
    """`--seeds 0,1,2` -> [0, 1, 2] (`rote.sweep.axis_values`), refusing an empty list and negative seeds."""
    from rote.sweep import axis_values

    seed_list = axis_values([seeds], int, "seeds")
    if not seed_list or min(seed_list) < 0:
        raise ConfigError(f"--seeds must be one or more whole numbers >= 0, got {seeds!r}")
    return seed_list


def _positive(value: float, flag: str, low: float = 1) -> None:
    if value < low:
        raise ConfigError(f"{flag} must be >= {low}, got {value}")


@app.command("train")
def ssl_train(
    out: Path = _OUT,
    data: str = _DATA,
    root: Optional[Path] = _ROOT,
    role: str = typer.Option("f", "--role", help="f (shared + candidate), g (shared + independent) or all."),
    method: str = typer.Option("simclr", "--method", help="simclr or supervised (the baseline)."),
    arch: str = typer.Option("resnet9", "--arch", help="resnet9 (paper), resnet18 or vit."),
    width: int = typer.Option(64, "--width", help="Channels of the first layer (ResNet9 paper: 64) or ViT width."),
    n_candidate: int = typer.Option(500, "--n-candidate", help="Candidate points (f only)."),
    n_independent: int = typer.Option(500, "--n-independent", help="Independent points (g only)."),
    n_shared: Optional[int] = typer.Option(None, "--n-shared", help="Shared points (default: all the rest)."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the split (f and g must use the same)."),
    epochs: int = typer.Option(10, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(256, "--batch-size", help="Batch size (SimCLR: 2x views per batch)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    temperature: float = typer.Option(0.5, "--temperature", help="NT-Xent temperature (reference: 0.5)."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Train one encoder of the split protocol; writes encoder.pt and checkpoints/ (a rerun resumes)."""
    import numpy as np
    import pandas as pd

    from rote.core.runs import RunFolder
    from rote.ssl.experiment import load_data
    from rote.ssl.report import train_outputs
    from rote.ssl.train import build_encoder, make_splits, save_encoder, train_simclr, train_supervised

    if role not in ("f", "g", "all"):
        raise ConfigError(f"--role must be f, g or all, got {role!r}")
    if method not in ("simclr", "supervised"):
        raise ConfigError(f"--method must be simclr or supervised, got {method!r}")
    _positive(epochs, "--epochs")
    _positive(width, "--width")
    run = RunFolder(out, force=force, inputs=[root] if root else [])
    dev = _device(device)
    ds = load_data(data, root, "train")
    sp = make_splits(len(ds), n_candidate, n_independent, n_shared=n_shared, seed=split_seed)
    pos = np.arange(len(ds)) if role == "all" else sp.train_positions(role)
    c, h, _ = ds.shape
    spec = {"arch": arch, "in_channels": c, "width": width, "image_size": h, "seed": seed}
    if method == "supervised":
        spec["num_classes"] = ds.n_classes
    model = build_encoder(**spec)
    train = ds.subset(pos).float()
    options = {
        "data": data,
        "root": str(root) if root else None,
        "role": role,
        "method": method,
        "arch": spec,
        "n_candidate": n_candidate,
        "n_independent": n_independent,
        "n_shared": n_shared,
        "split_seed": split_seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "temperature": temperature,
        "seed": seed,
        "device": dev,
    }
    run.write_config("rote ssl train", options, seed=seed)
    ckdir = run.file("checkpoints")
    if method == "simclr":
        hist = train_simclr(
            model,
            train.images,
            epochs=epochs,
            batch_size=batch_size,
            temperature=temperature,
            lr=lr,
            seed=seed,
            device=dev,
            checkpoint_dir=ckdir,
            progress=not quiet,
        )
    else:
        hist = train_supervised(
            model,
            train.images,
            train.labels,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=dev,
            checkpoint_dir=ckdir,
            progress=not quiet,
        )
    ids = ds.ids.cpu().numpy()
    info = {
        "method": method,
        "data": data,
        "root": str(root) if root else None,
        "role": role,
        "arch": spec,
        "n_train": len(pos),
        "candidate_ids": ids[sp.candidate].tolist(),
        "independent_ids": ids[sp.independent].tolist(),
        "train_ids": ids[np.sort(pos)].tolist(),
        "split_seed": split_seed,
    }
    save_encoder(run.file("encoder.pt"), model.cpu(), spec, info)
    history = pd.DataFrame(hist)
    result = {
        "method": method,
        "role": role,
        "n_train": len(pos),
        "epochs": epochs,
        "final_loss": float(history.loss.iloc[-1]),
        "encoder": "encoder.pt",
    }
    return run.finish(
        result,
        command="rote ssl train",
        options=options,
        seed=seed,
        quiet=quiet,
        summary=f"{method} {arch} ({role}): final loss {result['final_loss']:.4f}; encoder.pt written",
        tables={"history": history},
        **train_outputs(history, {**info, "arch": spec}),
    )


def _candidates(f_info: dict, g_info: dict, n_points: int):
    """Candidate ids of f, checked against g's training set."""
    import numpy as np

    cand = np.asarray(f_info.get("candidate_ids", []), dtype=np.int64)
    if len(cand) == 0:
        raise DataError("`f` records no candidate points; train it with `rote ssl train --role f`")
    train_f = set(f_info.get("train_ids", []))
    if train_f and not set(cand.tolist()) <= train_f:
        raise DataError("`f` was not trained on its candidates (role g or a different split?); pass the role-f encoder")
    both = set(cand.tolist()) & set(g_info.get("train_ids", []))
    if both:
        raise DataError(
            f"`g` was trained on {len(both)} of f's candidate points (e.g. id {min(both)}): the candidate set overlaps "
            "g's training data; train g with --role g and the same --split-seed and sizes as f"
        )
    return cand[:n_points]


def _load_candidates(info: dict, cand, device: str):
    from rote.ssl.experiment import load_data
    from rote.ssl.train import positions_of

    ds = load_data(info["data"], info.get("root"), "train")
    arch = info["arch"]
    if ds.shape[0] != arch["in_channels"]:
        raise DataError(
            f"{info['data']} images have {ds.shape[0]} channel(s) but the encoder takes {arch['in_channels']}; "
            "score the data the encoders were trained on"
        )
    return ds.subset(positions_of(cand, ds.ids.cpu().numpy())).float()


@app.command("localize")
def ssl_localize(
    out: Path = _OUT,
    f: Path = typer.Option(..., "--f", help="encoder.pt (or its run folder) of f: trained with the candidates."),
    g: Path = typer.Option(..., "--g", help="encoder.pt (or its run folder) of g: trained without them."),
    layers: Optional[str] = _LAYERS,
    supervised: Optional[Path] = typer.Option(None, "--supervised", help="A supervised encoder.pt for ClassMem."),
    n_points: int = typer.Option(500, "--n-points", help="Candidates to score (reference scripts: 500)."),
    n_aug: int = typer.Option(5, "--n-aug", help="Views per point for LayerMem (reference code: 5)."),
    unit_aug: int = typer.Option(10, "--unit-aug", help="Views per point for UnitMem (reference code: 10)."),
    pair: str = typer.Option("orig_vs_aug", "--pair", help="orig_vs_aug (code) or aug_vs_aug (paper)."),
    normalize: str = typer.Option("range", "--normalize", help="range (code), minmax01 or none."),
    others: str = typer.Option("mean", "--others", help="UnitMem mu_other: mean (paper) or median (code)."),
    unit_threshold: float = _THRESH,
    k: int = typer.Option(50, "--k", help="Points in the top/bottom/random breakdown and the t-test."),
    batch_size: int = typer.Option(64, "--batch-size", help="Points per forward batch (times the views)."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """LayerMem, delta-LayerMem, UnitMem (and ClassMem) of every layer on f's candidates; writes `layers`."""
    from rote.core.runs import RunFolder
    from rote.ssl.experiment import localize
    from rote.ssl.report import ssl_outputs
    from rote.ssl.scores import check_same_architecture
    from rote.ssl.train import load_encoder

    _positive(n_points, "--n-points", 4)
    run = RunFolder(out, force=force, inputs=[f, g] + ([supervised] if supervised else []))
    dev = _device(device)
    ef, eg = load_encoder(f, name="f", device=dev), load_encoder(g, name="g", device=dev)
    check_same_architecture(ef.model, eg.model)
    cand = _candidates(ef.info, eg.info, n_points)
    pts = _load_candidates(ef.info, cand, dev)
    sup = load_encoder(supervised, name="supervised", device=dev).model if supervised else None
    options = {
        "f": str(f),
        "g": str(g),
        "layers": layers,
        "supervised": str(supervised) if supervised else None,
        "n_points": n_points,
        "n_aug": n_aug,
        "unit_aug": unit_aug,
        "pair": pair,
        "normalize": normalize,
        "others": others,
        "unit_threshold": unit_threshold,
        "k": k,
        "batch_size": batch_size,
        "seed": seed,
        "device": dev,
    }
    result = localize(
        ef.model,
        eg.model,
        pts.images,
        ids=pts.ids.cpu().numpy(),
        labels=pts.labels.cpu().numpy(),
        layers=_layers(layers),
        n_aug=n_aug,
        unit_aug=unit_aug,
        pair=pair,
        normalize=normalize,
        others=others,
        unit_threshold=unit_threshold,
        k=k,
        seed=seed,
        batch_size=batch_size,
        supervised=sup,
        setup={"data": ef.info.get("data"), "arch": ef.arch},
    )
    return run.finish(
        result,
        command="rote ssl localize",
        options=options,
        seed=seed,
        quiet=quiet,
        inputs={"f": f, "g": g},
        **ssl_outputs(result),
    )


@app.command("prune")
def ssl_prune(
    out: Path = _OUT,
    f: Path = typer.Option(..., "--f", help="encoder.pt (or its run folder) whose units are pruned."),
    layers: Optional[str] = _LAYERS,
    fraction: float = typer.Option(
        0.1, "--fraction", help="Fraction of each layer's units to prune (paper: 0.1, 0.2)."
    ),
    n_points: int = typer.Option(500, "--n-points", help="Candidates UnitMem is measured on."),
    unit_aug: int = typer.Option(10, "--unit-aug", help="Views per point for UnitMem."),
    others: str = typer.Option("mean", "--others", help="UnitMem mu_other: mean (paper) or median (code)."),
    n_probe: int = typer.Option(1000, "--n-probe", help="Test-split images to train the probe on (as many to test)."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Prune the top / random / bottom `fraction` of units by UnitMem and report linear-probe accuracies."""
    import numpy as np

    from rote.core.runs import RunFolder
    from rote.ssl.experiment import load_data
    from rote.ssl.prune import pruning_curve
    from rote.ssl.report import pruning_plot
    from rote.ssl.scores import unitmem
    from rote.ssl.train import load_encoder

    if not 0 < fraction < 1:
        raise ConfigError(f"--fraction must lie in (0, 1), got {fraction}")
    _positive(n_probe, "--n-probe", 10)
    _positive(n_points, "--n-points", 2)
    run = RunFolder(out, force=force, inputs=[f])
    dev = _device(device)
    ef = load_encoder(f, name="f", device=dev)
    cand = np.asarray(ef.info.get("candidate_ids", []), dtype=np.int64)[:n_points]
    if len(cand) < 2:
        raise DataError("`f` records fewer than 2 candidate points; train it with `rote ssl train --role f`")
    pts = _load_candidates(ef.info, cand, dev)
    names = _layers(layers) or ef.model.layer_names()
    um = unitmem(ef.model, pts.images, names, n_aug=unit_aug, others=others, seed=seed)
    test = load_data(ef.info["data"], ef.info.get("root"), "test")
    if len(test) < 2 * n_probe:
        raise DataError(f"the test split has {len(test)} images; --n-probe {n_probe} needs {2 * n_probe}")
    perm = np.random.default_rng(seed + 1).permutation(len(test))
    tr, te = test.subset(perm[:n_probe]).float(), test.subset(perm[n_probe : 2 * n_probe]).float()
    acc = pruning_curve(ef.model, um.values, (tr.images, tr.labels, te.images, te.labels), fraction=fraction, seed=seed)
    options = {
        "f": str(f),
        "layers": layers,
        "fraction": fraction,
        "n_points": n_points,
        "unit_aug": unit_aug,
        "others": others,
        "n_probe": n_probe,
        "seed": seed,
        "device": dev,
    }
    result = {"pruning": acc, "fraction": fraction, "n_points": len(cand), "layers": names}
    png = pruning_plot(acc)

    def report(config: dict) -> str:
        from rote.report.html import Report

        rep = Report("rote ssl prune", f"{fraction:.0%} of the units of {len(names)} layers, by UnitMem")
        rep.add_summary({f"probe accuracy, pruned {k}": v for k, v in acc.items()})
        rep.add_image(png, alt="probe accuracy after pruning")
        rep.add_table(um.table(), caption="UnitMem per layer")
        rep.add_config(config)
        return rep.render()

    summary = "probe accuracy after pruning: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
    return run.finish(
        result,
        command="rote ssl prune",
        options=options,
        seed=seed,
        quiet=quiet,
        inputs={"f": f},
        tables={"units": um.frame().rename(columns={"value": "unitmem"})},
        plots={"pruning": png},
        report=report,
        summary=summary,
        extra={"unitmem": um.table().to_dict("records")},
    )


@app.command("finetune")
def ssl_finetune(
    out: Path = _OUT,
    f: Path = typer.Option(..., "--f", help="encoder.pt (or its run folder) to fine-tune."),
    localize: Path = typer.Option(
        ..., "--localize", help="The --out folder of `rote ssl localize` (or `demo`) run on this encoder."
    ),
    k: int = typer.Option(2, "--k", help="Layers to fine-tune."),
    rules: str = typer.Option(
        "most,last,random", "--rules", help="Comma-separated: most, most-delta, last, random, none (head only)."
    ),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds, comma-separated: one fine-tuning run per rule each."),
    data: Optional[str] = typer.Option(None, "--data", help="Downstream data (default: the encoder's own)."),
    root: Optional[Path] = _ROOT,
    n_train: int = typer.Option(1000, "--n-train", help="Labelled downstream training images (test split)."),
    n_test: int = typer.Option(1000, "--n-test", help="Downstream test images (disjoint from --n-train)."),
    epochs: int = typer.Option(10, "--epochs", help="Fine-tuning epochs."),
    batch_size: int = typer.Option(64, "--batch-size", help="Fine-tuning batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="Adam weight decay (reference: 1e-4)."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Crop + flip views while fine-tuning."),
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Fine-tune the k most-memorizing layers (by LayerMem) versus the last k (and random k) with a linear head."""
    from rote.core.runs import RunFolder
    from rote.ssl.experiment import downstream_data
    from rote.ssl.finetune import compare_finetuning, parse_rules, read_localize
    from rote.ssl.report import finetune_outputs
    from rote.ssl.train import load_encoder

    seed_list = _seed_list(seeds)
    parse_rules(rules)
    _positive(k, "--k")
    _positive(epochs, "--epochs")
    _positive(batch_size, "--batch-size", 2)
    _positive(n_train, "--n-train", 2)
    _positive(n_test, "--n-test")
    if not lr > 0:
        raise ConfigError(f"--lr must be > 0, got {lr}")
    run = RunFolder(out, force=force, inputs=[f, localize] + ([root] if root else []))
    dev = _device(device)
    ef = load_encoder(f, name="f", device=dev)
    scores = read_localize(localize)
    sets, desc = downstream_data(
        ef.info, ef.arch, data=data, root=root, n_train=n_train, n_test=n_test, seed=seed_list[0] + 1
    )
    options = {
        "f": str(f),
        "localize": str(localize),
        "k": k,
        "rules": rules,
        "seeds": seed_list,
        "data": data,
        "root": str(root) if root else None,
        "n_train": n_train,
        "n_test": n_test,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "augment": augment,
        "device": dev,
    }
    result = compare_finetuning(
        ef.model,
        scores,
        sets,
        k=k,
        rules=rules,
        seeds=seed_list,
        arch=ef.arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        augment=augment,
        n_classes=desc["classes"],
        device=dev,
        setup={**desc, "encoder_arch": ef.arch, "encoder_data": ef.info.get("data")},
        progress=not quiet,
    )
    return run.finish(
        result,
        command="rote ssl finetune",
        options=options,
        seed=seed_list[0],
        quiet=quiet,
        inputs={"f": f, "localize": localize},
        **finetune_outputs(result),
    )


@app.command("demo")
def ssl_demo(
    out: Path = _OUT,
    data: str = typer.Option("fashion-mnist", "--data", help="fashion-mnist (default), mnist-5k or digits."),
    width: int = typer.Option(8, "--width", help="ResNet9 width (paper: 64)."),
    epochs: int = typer.Option(100, "--epochs", help="SimCLR epochs of f and g."),
    supervised_epochs: int = typer.Option(
        5, "--supervised-epochs", help="Epochs of the supervised baseline (0: none)."
    ),
    n_shared: int = typer.Option(100, "--n-shared", help="Shared training points."),
    n_candidate: int = typer.Option(100, "--n-candidate", help="Candidate points (f only; the scored points)."),
    n_independent: int = typer.Option(100, "--n-independent", help="Independent points (g only)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size."),
    n_probe: int = typer.Option(1000, "--n-probe", help="Probe train/test images from the test split (0: no pruning)."),
    prune_fraction: float = typer.Option(0.1, "--prune-fraction", help="Fraction of each layer's units pruned."),
    finetune_k: int = _FT_K,
    finetune_epochs: int = _FT_EPOCHS,
    unit_threshold: float = _THRESH,
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The whole study at CPU scale: SimCLR f and g on a Fashion-MNIST subset, LayerMem, UnitMem, pruning."""
    from rote.core.runs import RunFolder
    from rote.ssl.experiment import run_demo
    from rote.ssl.report import ssl_outputs

    if data not in ("fashion-mnist", "mnist-5k", "digits"):
        raise ConfigError(f"--data must be fashion-mnist, mnist-5k or digits, got {data!r}")
    _positive(width, "--width")
    _positive(epochs, "--epochs")
    _positive(supervised_epochs, "--supervised-epochs", 0)
    _positive(n_probe, "--n-probe", 0)
    _positive(finetune_k, "--finetune-k", 0)
    _positive(finetune_epochs, "--finetune-epochs")
    if not 0 < prune_fraction < 1:
        raise ConfigError(f"--prune-fraction must lie in (0, 1), got {prune_fraction}")
    run = RunFolder(out, force=force)
    dev = _device(device)
    options = {
        "data": data,
        "width": width,
        "epochs": epochs,
        "supervised_epochs": supervised_epochs,
        "n_shared": n_shared,
        "n_candidate": n_candidate,
        "n_independent": n_independent,
        "batch_size": batch_size,
        "n_probe": n_probe,
        "prune_fraction": prune_fraction,
        "finetune_k": finetune_k,
        "finetune_epochs": finetune_epochs,
        "unit_threshold": unit_threshold,
        "seed": seed,
        "device": dev,
    }
    result = run_demo(
        data=data,
        width=width,
        epochs=epochs,
        supervised_epochs=supervised_epochs,
        n_shared=n_shared,
        n_candidate=n_candidate,
        n_independent=n_independent,
        batch_size=batch_size,
        n_probe=n_probe,
        prune_fraction=prune_fraction,
        finetune_k=finetune_k,
        finetune_epochs=finetune_epochs,
        unit_threshold=unit_threshold,
        seed=seed,
        device=dev,
        progress=not quiet,
    )
    tables = {"history": result.history} if result.history is not None else {}
    outs = ssl_outputs(result, title="rote ssl demo")
    outs["tables"] = {**outs["tables"], **tables}
    return run.finish(result, command="rote ssl demo", options=options, seed=seed, quiet=quiet, **outs)


@app.command("grid")
def ssl_grid(
    out: Path = _OUT,
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds, comma-separated: one demo run each."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: in this process)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the seeds as Ray tasks: 'local' or a cluster address."),
    data: str = typer.Option("fashion-mnist", "--data", help="fashion-mnist (default), mnist-5k or digits."),
    width: int = typer.Option(8, "--width", help="ResNet9 width (paper: 64)."),
    epochs: int = typer.Option(100, "--epochs", help="SimCLR epochs of f and g."),
    supervised_epochs: int = typer.Option(5, "--supervised-epochs", help="Epochs of the supervised baseline."),
    n_shared: int = typer.Option(100, "--n-shared", help="Shared training points."),
    n_candidate: int = typer.Option(100, "--n-candidate", help="Candidate points."),
    n_independent: int = typer.Option(100, "--n-independent", help="Independent points."),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size."),
    n_probe: int = typer.Option(1000, "--n-probe", help="Probe train/test images (0: no pruning)."),
    finetune_k: int = _FT_K,
    finetune_epochs: int = _FT_EPOCHS,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The demo once per seed as a `rote.sweep` grid; mean and std of every per-layer number over the seeds."""
    from rote.core.runs import RunFolder
    from rote.ssl.experiment import run_demo_seeds

    seed_list = _seed_list(seeds)
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    if data not in ("fashion-mnist", "mnist-5k", "digits"):
        raise ConfigError(f"--data must be fashion-mnist, mnist-5k or digits, got {data!r}")
    _positive(epochs, "--epochs")
    _positive(finetune_k, "--finetune-k", 0)
    _positive(finetune_epochs, "--finetune-epochs")
    run = RunFolder(out, force=force)
    options = {
        "data": data,
        "width": width,
        "epochs": epochs,
        "supervised_epochs": supervised_epochs,
        "n_shared": n_shared,
        "n_candidate": n_candidate,
        "n_independent": n_independent,
        "batch_size": batch_size,
        "n_probe": n_probe,
        "finetune_k": finetune_k,
        "finetune_epochs": finetune_epochs,
    }
    table, sweep = run_demo_seeds(seed_list, run.file("."), options=options, workers=workers, ray=ray, quiet=quiet)
    result = {"seeds": seed_list, "metrics": table.to_dict("records")}
    lines = [f"{r.metric:<32}{r.mean:>10.4f} ± {r.std:.4f}" for r in table.itertuples()]

    def report(config: dict) -> str:
        from rote.report.html import Report

        rep = Report("rote ssl grid", f"the demo over seeds {', '.join(map(str, seed_list))}")
        rep.add_table(table, caption="Mean and sample std over the seeds")
        rep.add_config(config)
        return rep.render()

    return run.finish(
        result,
        command="rote ssl grid",
        options={**options, "seeds": seed_list, "workers": workers, "ray": ray},
        quiet=quiet,
        sweeps=sweep,
        tables={"aggregate": table},
        report=report,
        summary="\n".join(lines),
    )
