"""rote.core.checkpoints: round trip, atomicity, refusal of foreign, corrupt and code-carrying files, RNG restore."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from rote.core import checkpoints as ck
from rote.core.errors import ConfigError


def test_round_trip_with_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    ck.save_checkpoint(
        tmp_path / ck.checkpoint_name(3),
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": 3,
            "history": [{"loss": 1.5}],
            "rng": ck.capture_rng_state(),
        },
        kind="demo",
    )
    data = ck.load_checkpoint(tmp_path / "epoch-000003.pt", "demo")
    m2 = torch.nn.Linear(3, 2)
    m2.load_state_dict(data["model"])
    o2 = torch.optim.Adam(m2.parameters())
    o2.load_state_dict(data["optimizer"])
    assert torch.equal(m2.weight, model.weight) and data["epoch"] == 3 and data["history"] == [{"loss": 1.5}]
    assert "rote_checkpoint" not in data


def test_rng_restore_reproduces_draws():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ck.capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(1)
    ck.restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_latest_and_prune(tmp_path):
    for e in (1, 10, 2):
        ck.save_checkpoint(tmp_path / ck.checkpoint_name(e), {"epoch": e}, "k")
    (tmp_path / "notes.txt").write_text("x")
    assert ck.latest_checkpoint(tmp_path).name == "epoch-000010.pt"
    ck.prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000002.pt", "epoch-000010.pt"]
    assert ck.latest_checkpoint(tmp_path / "missing") is None


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_marker",))


def test_refuses_code_corrupt_foreign_and_wrong_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, evil)
    with pytest.raises(ConfigError, match="evil.pt: not a readable rote checkpoint"):
        ck.load_checkpoint(evil, "k")
    assert not (tmp_path / "pwned_marker").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="bad.pt"):
        ck.load_checkpoint(bad, "k")
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(ConfigError, match="no rote stamp"):
        ck.load_checkpoint(plain, "k")
    ck.save_checkpoint(tmp_path / "a.pt", {"w": 1}, "tabddpm")
    with pytest.raises(ConfigError, match="is a 'tabddpm' checkpoint, expected 'tabsyn'"):
        ck.load_checkpoint(tmp_path / "a.pt", "tabsyn")
    with pytest.raises(ConfigError, match="not found"):
        ck.load_checkpoint(tmp_path / "none.pt", "k")
    pickle_file = tmp_path / "p.pt"
    pickle_file.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ConfigError):
        ck.load_checkpoint(pickle_file, "k")
    assert not (tmp_path / "pwned_marker").exists()


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path / "c.pt", {"v": 1}, "k")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        ck.save_checkpoint(tmp_path / "c.pt", {"v": 2}, "k")
    monkeypatch.undo()
    assert ck.load_checkpoint(tmp_path / "c.pt", "k")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


_HALF_SAVE = """
import os, sys, time, torch
from rote.core import checkpoints as ck

def stuck(obj, fh, *a, **k):  # write part of the file, then hang: the parent kills us mid-save
    fh.write(b"half a checkpoint")
    fh.flush()
    open(sys.argv[2], "w").close()
    time.sleep(60)

torch.save = stuck
ck.save_checkpoint(os.path.join(sys.argv[1], "epoch-000002.pt"), {"v": 2}, "k")
"""


def test_a_save_killed_midway_leaves_a_temporary_that_is_ignored_then_removed(tmp_path):
    from rote_testing import kill_when_ready

    ck.save_checkpoint(tmp_path / "epoch-000001.pt", {"v": 1}, "k")
    ready = tmp_path.parent / f"{tmp_path.name}.ready"
    pid = kill_when_ready(_HALF_SAVE, ready, args=(str(tmp_path), str(ready)), timeout=60)
    tmps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(tmps) == 1 and tmps[0].name.startswith(f".epoch-000002.pt.{pid}.")
    assert ck.latest_checkpoint(tmp_path).name == "epoch-000001.pt"  # the temporary is never a checkpoint
    ck.save_checkpoint(tmp_path / "epoch-000003.pt", {"v": 3}, "k")  # the next save removes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-000001.pt", "epoch-000003.pt"]
    assert ck.load_checkpoint(ck.latest_checkpoint(tmp_path), "k")["v"] == 3


def test_temporaries_of_live_processes_are_kept(tmp_path):
    live = tmp_path / f".epoch-000001.pt.{os.getppid()}.abcd1234.tmp"  # our parent: alive, not us
    ours = tmp_path / f".epoch-000001.pt.{os.getpid()}.abcd1234.tmp"  # ours, not being written: stale
    for p in (live, ours):
        p.write_bytes(b"x")
    assert ck.remove_stale_temporaries(tmp_path) == [ours] and live.exists()
    assert ck.remove_stale_temporaries(tmp_path / "missing") == []
