"""Broken model files give one line and exit 2, never a traceback: tiny-GPT checkpoints with a valid stamp but wrong
contents (Hugging Face folders with pickled or garbage weights: tests/llm/test_backends.py, which has the folder)."""

from __future__ import annotations

import pytest
import torch

from rote.cli.main import app
from rote.core.cli import run_app
from rote.core.checkpoints import save_checkpoint
from rote.core.errors import BackendError
from rote.llm import open_backend
from rote.llm.tinygpt import MODEL_KIND, TinyGPTConfig, build_model, save_model

torch.set_num_threads(1)


def cli(argv):
    return run_app(app, argv)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    p = tmp_path_factory.mktemp("texts") / "t.jsonl"
    p.write_text('{"text": "In the beginning God created the heaven and the earth."}\n')
    return p


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    p = tmp_path_factory.mktemp("tiny") / "model.pt"
    save_model(build_model(TinyGPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16), seed=0), p)
    return p


def _bad(tmp_path, good, change):
    state = torch.load(good, weights_only=True)
    payload = {k: v for k, v in state.items() if not k.startswith("_")} if isinstance(state, dict) else state
    change(payload)
    out = tmp_path / "bad" / "model.pt"
    save_checkpoint(out, payload, MODEL_KIND)
    return out


CASES = {
    "missing config": (lambda s: s.pop("config"), "holds no model config"),
    "bogus config": (lambda s: s.update(config={"n_layer": "two", "colour": 1}), "model config is not valid"),
    "config of another size": (lambda s: s["config"].update(n_embd=32), "weights do not fit"),
    "wrong state dict": (lambda s: s.update(model={"w": torch.zeros(2)}), "weights do not fit"),
    "tokenizer of the wrong type": (lambda s: s.update(tokenizer="bytes"), "unknown tokenizer 'str'"),
    "tokenizer of another kind": (lambda s: s.update(tokenizer={"kind": "bpe"}), "unknown tokenizer 'bpe'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tiny_checkpoints_with_wrong_contents(tmp_path, good, texts, case, capsys):
    change, message = CASES[case]
    bad = _bad(tmp_path, good, change)
    with pytest.raises(BackendError, match=message):
        open_backend(f"tiny:{bad}")
    argv = ["llm", "membership", "--model", f"tiny:{bad}", "--members", str(texts), "--nonmembers", str(texts)]
    code = cli([*argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "run").exists()
