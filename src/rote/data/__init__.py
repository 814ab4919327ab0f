"""Tables in, clean tables out: schemas, file loading, validation, dataset presets and shipped datasets.

Typical use: `df = load_table(path)`, `schema = infer_schema(df, target=...)` (or `apply_preset`), then
`clean = validate_table(df, schema)`; everything downstream works on `clean`.
"""

from rote.data.presets import DATASET_PRESETS, DatasetPreset, apply_preset, get_preset
from rote.data.registry import DatasetInfo, dataset_schema, list_datasets, load_dataset
from rote.data.schema import TableSchema, infer_schema
from rote.data.tables import MISSING_CATEGORY, load_table, unseen_categories, validate_table

__all__ = [
    "DATASET_PRESETS",
    "MISSING_CATEGORY",
    "DatasetInfo",
    "DatasetPreset",
    "TableSchema",
    "apply_preset",
    "dataset_schema",
    "get_preset",
    "infer_schema",
    "list_datasets",
    "load_dataset",
    "load_table",
    "unseen_categories",
    "validate_table",
]
