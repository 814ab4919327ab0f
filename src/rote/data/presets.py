"""Column types for the public benchmark tables used in the TabCutMix paper (Fang et al., ICML 2025).

Inference guesses types; for the paper's datasets the types are known, so `--dataset-preset NAME` fixes them exactly as
in the paper's code (the label of a classification task counts as categorical, a regression target as
numeric). The data files themselves are not shipped (except Adult, see `rote.data.registry`); each preset's
`source` says where to get the file and `description` what to do with it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rote.core.errors import ConfigError, SchemaError
from rote.data.schema import TableSchema, _fmt_names

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
"""Prediction tasks a preset can declare for its target."""


@dataclass(frozen=True)
class DatasetPreset:
    """Known column types of one benchmark table; `drop` lists identifier columns removed before use."""

    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    drop: tuple[str, ...] = ()
    sep: str = ","
    task: str = "binary"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        for field in ("numeric", "categorical", "drop"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        if self.task not in TASKS:
            raise ConfigError(f"preset '{self.name}': task {self.task!r} is unknown; use one of {', '.join(TASKS)}")
        overlap = [c for c in self.drop if c in set(self.numeric) | set(self.categorical)]
        if overlap:
            raise ConfigError(
                f"preset '{self.name}': columns both kept and dropped: {_fmt_names(overlap)}; "
                "remove them from drop or from the column lists"
            )
        self.schema  # noqa: B018 - validates the column lists (duplicates, overlaps, target) at definition time

    @property
    def schema(self) -> TableSchema:
        """The preset's `TableSchema` (numeric, categorical, target)."""
        return TableSchema(self.numeric, self.categorical, self.target)


_NEWS_NUMERIC = (
    "n_tokens_title",
    "n_tokens_content",
    "n_unique_tokens",
    "n_non_stop_words",
    "n_non_stop_unique_tokens",
    "num_hrefs",
    "num_self_hrefs",
    "num_imgs",
    "num_videos",
    "average_token_length",
    "num_keywords",
    "kw_min_min",
    "kw_max_min",
    "kw_avg_min",
    "kw_min_max",
    "kw_max_max",
    "kw_avg_max",
    "kw_min_avg",
    "kw_max_avg",
    "kw_avg_avg",
    "self_reference_min_shares",
    "self_reference_max_shares",
    "self_reference_avg_sharess",
    "LDA_00",
    "LDA_01",
    "LDA_02",
    "LDA_03",
    "LDA_04",
    "global_subjectivity",
    "global_sentiment_polarity",
    "global_rate_positive_words",
    "global_rate_negative_words",
    "rate_positive_words",
    "rate_negative_words",
    "avg_positive_polarity",
    "min_positive_polarity",
    "max_positive_polarity",
    "avg_negative_polarity",
    "min_negative_polarity",
    "max_negative_polarity",
    "title_subjectivity",
    "title_sentiment_polarity",
    "abs_title_subjectivity",
    "abs_title_sentiment_polarity",
    "shares",
)
_NEWS_CATEGORICAL = (
    "data_channel_is_lifestyle",
    "data_channel_is_entertainment",
    "data_channel_is_bus",
    "data_channel_is_socmed",
    "data_channel_is_tech",
    "data_channel_is_world",
    "weekday_is_monday",
    "weekday_is_tuesday",
    "weekday_is_wednesday",
    "weekday_is_thursday",
    "weekday_is_friday",
    "weekday_is_saturday",
    "weekday_is_sunday",
    "is_weekend",
)

_PRESET_LIST = (
    DatasetPreset(
        name="adult",
        numeric=("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"),
        categorical=(
            "workclass",
            "education",
            "marital-status",
            "occupation",
            "relationship",
            "race",
            "sex",
            "native-country",
            "income",
        ),
        target="income",
        description="UCI Adult census income (>50K or <=50K); shipped with rote: `rote.data.load_dataset('adult')`",
        source="https://archive.ics.uci.edu/dataset/2/adult",
    ),
    DatasetPreset(
        name="default",
        numeric=("LIMIT_BAL", "AGE", *(f"BILL_AMT{i}" for i in range(1, 7)), *(f"PAY_AMT{i}" for i in range(1, 7))),
        categorical=(
            "SEX",
            "EDUCATION",
            "MARRIAGE",
            "PAY_0",
            "PAY_2",
            "PAY_3",
            "PAY_4",
            "PAY_5",
            "PAY_6",
            "default payment next month",
        ),
        target="default payment next month",
        drop=("ID",),
        description="UCI default of credit card clients (Taiwan, 2005); save the .xls 'Data' sheet as CSV with "
        "the second row (ID, LIMIT_BAL, ...) as header",
        source="https://archive.ics.uci.edu/dataset/350/default+of+credit+card+clients",
    ),
    DatasetPreset(
        name="shoppers",
        numeric=(
            "Administrative",
            "Administrative_Duration",
            "Informational",
            "Informational_Duration",
            "ProductRelated",
            "ProductRelated_Duration",
            "BounceRates",
            "ExitRates",
            "PageValues",
            "SpecialDay",
        ),
        categorical=(
            "Month",
            "OperatingSystems",
            "Browser",
            "Region",
            "TrafficType",
            "VisitorType",
            "Weekend",
            "Revenue",
        ),
        target="Revenue",
        description="UCI Online Shoppers Purchasing Intention (online_shoppers_intention.csv)",
        source="https://archive.ics.uci.edu/dataset/468/online+shoppers+purchasing+intention+dataset",
    ),
    DatasetPreset(
        name="magic",
        numeric=("fLength", "fWidth", "fSize", "fConc", "fConc1", "fAsym", "fM3Long", "fM3Trans", "fAlpha", "fDist"),
        categorical=("class",),
        target="class",
        description="UCI MAGIC gamma telescope (gamma g vs hadron h); magic04.data has no header: save it as CSV "
        "with the header fLength,fWidth,fSize,fConc,fConc1,fAsym,fM3Long,fM3Trans,fAlpha,fDist,class",
        source="https://archive.ics.uci.edu/dataset/159/magic+gamma+telescope",
    ),
    DatasetPreset(
        name="beijing",
        numeric=("pm2.5", "DEWP", "TEMP", "PRES", "Iws", "Is", "Ir"),
        categorical=("year", "month", "day", "hour", "cbwd"),
        target="pm2.5",
        drop=("No",),
        task="regression",
        description="UCI Beijing PM2.5 (hourly, 2010-2014); pm2.5 has missing cells: drop those rows first",
        source="https://archive.ics.uci.edu/dataset/381/beijing+pm2+5+data",
    ),
    DatasetPreset(
        name="news",
        numeric=_NEWS_NUMERIC,
        categorical=_NEWS_CATEGORICAL,
        target="shares",
        drop=("url", "timedelta"),
        task="regression",
        description="UCI Online News Popularity (Mashable, number of shares); the file's header has spaces after "
        "the commas, which apply_preset strips from column names",
        source="https://archive.ics.uci.edu/dataset/332/online+news+popularity",
    ),
    DatasetPreset(
        name="cardio",
        numeric=("age", "height", "weight", "ap_hi", "ap_lo"),
        categorical=("gender", "cholesterol", "gluc", "smoke", "alco", "active", "cardio"),
        target="cardio",
        drop=("id",),
        sep=";",
        description="Cardiovascular disease (cardio_train.csv, semicolon-separated; age in days)",
        source="https://www.kaggle.com/datasets/sulianova/cardiovascular-disease-dataset",
    ),
    DatasetPreset(
        name="churn",
        numeric=("CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "EstimatedSalary"),
        categorical=("Geography", "Gender", "HasCrCard", "IsActiveMember", "Exited"),
        target="Exited",
        drop=("RowNumber", "CustomerId", "Surname"),
        description="Bank customer churn (Churn_Modelling.csv, 10,000 customers)",
        source="Kaggle 'Churn Modelling' dataset (Churn_Modelling.csv)",
    ),
    DatasetPreset(
        name="wilt",
        numeric=("GLCM_pan", "Mean_Green", "Mean_Red", "Mean_NIR", "SD_pan"),
        categorical=("class",),
        target="class",
        description="UCI Wilt (diseased trees w vs other land n, from satellite images)",
        source="https://archive.ics.uci.edu/dataset/285/wilt",
    ),
)

DATASET_PRESETS: dict[str, DatasetPreset] = {p.name: p for p in _PRESET_LIST}
"""Preset name -> `DatasetPreset`, for `--dataset-preset NAME`."""


def get_preset(name: str) -> DatasetPreset:
    """The preset called `name`; ConfigError listing the known names otherwise."""
    try:
        return DATASET_PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"`dataset_preset` {name}: unknown dataset preset; known presets: {', '.join(DATASET_PRESETS)}"
        ) from None


def apply_preset(df: pd.DataFrame, name: str) -> tuple[pd.DataFrame, TableSchema]:
    """A new frame without the preset's `drop` columns, and the preset's schema.

    Column names that differ from a preset column only by surrounding spaces (as in the UCI news file) are
    renamed to the preset's name. Values are untouched; `validate_table` checks them afterwards.
    """
    preset = get_preset(name)
    source = str(df.attrs.get("source", "table"))
    known = set(preset.numeric) | set(preset.categorical) | set(preset.drop)
    renames = {
        c: c.strip()
        for c in df.columns
        if isinstance(c, str)
        and c not in known
        and c.strip() != c
        and c.strip() in known
        and c.strip() not in set(df.columns)
    }
    out = df.rename(columns=renames) if renames else df.copy(deep=True)
    present = set(out.columns)
    absent = [c for c in preset.schema.columns if c not in present]
    if absent:
        raise SchemaError(
            f"{source}: columns required by preset '{preset.name}' are missing: {_fmt_names(absent)}; "
            f"check that the file is the {preset.name} table ({preset.source or preset.description}) "
            "or drop `dataset_preset` and pass `numeric`/`categorical`"
        )
    out = out.drop(columns=[c for c in preset.drop if c in present])
    out.attrs = {**df.attrs, "source": source}
    return out, preset.schema
