"""Model preprocessing (`rote.tabular.models.preprocess`) against scikit-learn, and the generator contract shared
by TabDDPM, TabSyn and the independent-column baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import QuantileTransformer

from rote.core.errors import DataError
from rote.data import TableSchema, dataset_schema, load_dataset
from rote.tabular import IndependentColumnSampler
from rote.tabular.models import QuantileNormalizer, TableCodec, TabDDPM, TabSyn
from rote.tabular.models.preprocess import n_quantiles_for


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sklearn(x: np.ndarray) -> QuantileTransformer:
    q = n_quantiles_for(len(x))
    sk = QuantileTransformer(n_quantiles=min(q, len(x)), output_distribution="normal", subsample=10**9)
    return sk.fit(x[:, None])


@pytest.mark.parametrize("kind", ["lognormal", "mostly_zero", "integers"])
def test_quantile_normalizer_matches_scikit_learn(kind):
    rng = np.random.default_rng(0)
    x = {
        "lognormal": rng.lognormal(size=5000),
        "mostly_zero": np.where(rng.random(5000) < 0.9, 0.0, rng.exponential(1000, 5000)),
        "integers": rng.integers(17, 91, 5000).astype(float),
    }[kind]
    ours, sk = QuantileNormalizer.fit(x), _sklearn(x)
    np.testing.assert_allclose(ours.transform(x), sk.transform(x[:, None])[:, 0], atol=1e-12)
    z = np.concatenate([rng.normal(0, 2, 2000), [-9.0, 0.0, 9.0]])
    np.testing.assert_allclose(ours.inverse(z), sk.inverse_transform(z[:, None])[:, 0], rtol=1e-12, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=300))
def test_quantile_normalizer_round_trip_and_range(values):
    x = np.array(values)
    qn = QuantileNormalizer.fit(x)
    z = qn.transform(x)
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) < 5.3)
    back = qn.inverse(z)
    assert np.all(back >= x.min()) and np.all(back <= x.max())
    np.testing.assert_allclose(back, x, atol=1e-6 * (1 + np.abs(x).max()))


def test_constant_column_maps_to_zero_and_back():
    qn = QuantileNormalizer.fit(np.full(50, 7.5))
    assert np.all(qn.transform(np.full(3, 7.5)) == 0)
    assert np.all(qn.inverse(np.array([-3.0, 0.0, 2.0])) == 7.5)


def test_codec_round_trip_on_adult():
    adult = load_dataset("adult")
    schema = dataset_schema("adult")
    codec = TableCodec().fit(adult, schema)
    x_num, x_cat = codec.encode(adult)
    assert x_num.shape == (len(adult), 6) and x_num.dtype == torch.float32
    assert x_cat.shape == (len(adult), 9) and x_cat.dtype == torch.int64
    assert codec.n_classes == [adult[c].nunique() for c in schema.categorical]
    back = codec.decode(x_num, x_cat)
    assert list(back.columns) == list(adult.columns) and back.dtypes.to_dict() == adult.dtypes.to_dict()
    for c in schema.categorical:
        assert back[c].equals(adult[c]), c
    for c in schema.numeric:  # scores are float32: exact except far in a sparse tail (fnlwgt above 1.4e6)
        span = adult[c].max() - adult[c].min()
        assert (back[c] - adult[c]).abs().max() <= 1e-4 * span, c
    assert (back[list(schema.numeric)] == adult[list(schema.numeric)]).to_numpy().mean() > 0.9999
    # the state survives a plain-values round trip (what checkpoints store)
    again = TableCodec.from_state_dict(codec.state_dict()).decode(x_num, x_cat)
    pd.testing.assert_frame_equal(again, back)


def test_codec_keeps_user_values_of_integer_categories():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 1, 0], "b": [True, False, True, True]})
    codec = TableCodec().fit(df, TableSchema(("x",), ("y", "b")))
    back = codec.decode(*codec.encode(df))
    pd.testing.assert_frame_equal(back, df)


def test_codec_refuses_unseen_categories():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    codec = TableCodec().fit(df, TableSchema(("x",), ("c",)))
    with pytest.raises(DataError, match="column 'c'.*'z'.*row 2"):
        codec.encode(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "z"]}), name="other")


@pytest.mark.parametrize(
    "make",
    [
        lambda: TabDDPM(epochs=1, d_layers=(16,), dim_t=8, num_timesteps=5, batch_size=64),
        lambda: TabSyn(vae_epochs=1, epochs=1, batch_size=64, dim_t=8, factor=2, sample_steps=3),
        lambda: IndependentColumnSampler(seed=0),
    ],
    ids=["TabDDPM", "TabSyn", "IJF"],
)
def test_every_generator_follows_the_contract(make, tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 120), "w": rng.normal(size=120), "c": rng.choice(["u", "v"], 120)})
    schema = TableSchema(("age", "w"), ("c",))
    model = make()
    assert (
        model.fit(
            df, schema, callbacks=(), checkpoint_dir=tmp_path / "ck", checkpoint_every=1, resume=True, progress=False
        )
        is model
    )
    s = model.sample(40, seed=0)
    assert list(s.columns) == list(df.columns) and s.dtypes.to_dict() == df.dtypes.to_dict() and len(s) == 40
    pd.testing.assert_frame_equal(s, model.sample(40, seed=0))
    assert isinstance(model.history_, list) and model.n_epochs_trained_ == len(model.history_)
