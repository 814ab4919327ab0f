"""Tabular generators: TabDDPM and TabSyn (diffusion models), with one fit/sample/checkpoint contract.

```python
from rote.tabular.models import TabDDPM, MemorizationHook, EarlyStopping
hook = MemorizationHook(train, schema, every=25)
model = TabDDPM(preset="small", epochs=100, seed=0).fit(train, schema, callbacks=[hook, EarlyStopping(20)],
                                                         checkpoint_dir="runs/x/checkpoints", checkpoint_every=10)
synthetic = model.sample(len(train), seed=0)
```
"""

from rote.tabular.models.base import Callback, TabularGenerator
from rote.tabular.models.callbacks import EarlyStopping, MemorizationHook
from rote.tabular.models.preprocess import QuantileNormalizer, TableCodec
from rote.tabular.models.tabddpm import MixedDiffusion, TabDDPM
from rote.tabular.models.tabsyn import TabSyn

__all__ = [
    "Callback",
    "TabularGenerator",
    "EarlyStopping",
    "MemorizationHook",
    "QuantileNormalizer",
    "TableCodec",
    "MixedDiffusion",
    "TabDDPM",
    "TabSyn",
]
