"""Datasets in, checked data out: tables, images and text, their loaders, splits and the dataset catalog.

Tables: `df = load_table(path)`, `schema = infer_schema(df, target=...)` (or `apply_preset`), then
`clean = validate_table(df, schema)`; everything downstream works on `clean`. Shipped tables: `load_dataset`.
Images: every loader returns an `ImageDataset` (uint8 (N, C, H, W), labels, stable ids) with seeded splits;
batch augmentation lives in `rote.data.augment`. Text: `load_texts`, `load_kjv` (`rote.data.text`).
`catalog()` lists every dataset with its size, licence and whether it is on this machine.

Image names are imported on first use, so `import rote.data` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from rote.data.catalog import CatalogEntry, catalog, catalog_frame
from rote.data.presets import DATASET_PRESETS, DatasetPreset, apply_preset, get_preset
from rote.data.registry import DatasetInfo, dataset_schema, list_datasets, load_dataset
from rote.data.schema import TableSchema, infer_schema
from rote.data.splits import balanced_indices, halves_indices, kfold_indices
from rote.data.tables import MISSING_CATEGORY, load_table, unseen_categories, validate_table
from rote.data.text import kjv_passages, load_kjv, load_texts, write_texts

# name -> module for the exports that need torch (loaded on first attribute access)
_LAZY: dict[str, str] = {
    "ImageDataset": "rote.data.images",
    "from_arrays": "rote.data.images",
    "load_arrays": "rote.data.image_loaders",
    "load_cifar10": "rote.data.image_loaders",
    "load_cifar100": "rote.data.image_loaders",
    "load_digits": "rote.data.image_loaders",
    "load_fashion_mnist": "rote.data.image_loaders",
    "load_idx": "rote.data.image_loaders",
    "load_image_folder": "rote.data.image_loaders",
    "load_mnist5k": "rote.data.image_loaders",
    "load_stl10": "rote.data.image_loaders",
    "load_svhn": "rote.data.image_loaders",
    "read_idx": "rote.data.image_loaders",
    "simclr_augment": "rote.data.augment",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rote.data' has no attribute {name!r}")


__all__ = [
    "DATASET_PRESETS",
    "MISSING_CATEGORY",
    "CatalogEntry",
    "DatasetInfo",
    "DatasetPreset",
    "TableSchema",
    "apply_preset",
    "balanced_indices",
    "catalog",
    "catalog_frame",
    "dataset_schema",
    "get_preset",
    "halves_indices",
    "infer_schema",
    "kfold_indices",
    "kjv_passages",
    "list_datasets",
    "load_dataset",
    "load_kjv",
    "load_table",
    "load_texts",
    "unseen_categories",
    "validate_table",
    "write_texts",
    *_LAZY,
]
