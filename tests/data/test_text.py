"""Text loading and validation (JSONL, plain text) and the KJV loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rote.core.errors import DataError
from rote.data import text
from rote.data.text import kjv_passages, load_kjv, load_texts, write_texts


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_ids_lines_and_extra_fields(tmp_path):
    p = write(
        tmp_path / "t.jsonl",
        [
            json.dumps({"id": "a", "text": "first text", "repeats": 10}),
            "",
            json.dumps({"text": "second", "kind": "fresh"}),
            json.dumps("bare string"),
        ],
    )
    f = load_texts(p)
    assert f["id"].tolist() == ["a", "line-3", "line-4"]
    assert f["text"].tolist() == ["first text", "second", "bare string"]
    assert f["line"].tolist() == [1, 3, 4]
    assert f["repeats"].iloc[0] == 10 and pd.isna(f["repeats"].iloc[1])
    assert f["kind"].iloc[1] == "fresh"
    assert str(f["text"].dtype) == "string"


def test_txt_blocks_separated_by_blank_lines(tmp_path):
    p = write(tmp_path / "t.txt", ["", "one line", "two lines", "", "", "third"])
    f = load_texts(p)
    assert f["text"].tolist() == ["one line\ntwo lines", "third"]
    assert f["line"].tolist() == [2, 6]


def test_write_then_load_round_trip(tmp_path):
    p = write_texts(tmp_path / "w.jsonl", ["x y", "é ü"], ids=["1", "2"], extra={"member": [True, False]})
    f = load_texts(p)
    assert f["text"].tolist() == ["x y", "é ü"] and f["member"].tolist() == [True, False]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "line 2: not UTF-8"),
        (b'{"text": "ok"}\n{"text": "   "}\n', "line 2: empty text"),
        (b'{"text": "ok"}\n{"txt": "x"}\n', 'line 2: no "text" field'),
        (b'{"text": "ok"}\n{"text": 3}\n', 'line 2: field "text" is int'),
        (b'{"text": "ok"\n', "line 1: not valid JSON"),
        (b"[1, 2]\n", "line 1: expected a JSON object"),
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "line 2: id 'a' was already used on line 1"),
        (b'{"text": "x", "meta": {"a": 1}}\n', 'line 1: field "meta" is a dict'),
        (b"\n\n", "holds no texts"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(DataError, match="bad.jsonl") as exc:
        load_texts(p)
    assert message in str(exc.value)


def test_huge_text_and_bad_txt(tmp_path):
    p = write(tmp_path / "h.jsonl", [json.dumps({"text": "a" * 50})])
    with pytest.raises(DataError, match=r"h.jsonl, line 1: text of 50 characters is over the limit of 10"):
        load_texts(p, max_chars=10)
    q = tmp_path / "b.txt"
    q.write_bytes(b"fine\n\n\xff\xfe broken\n")
    with pytest.raises(DataError, match=r"b.txt, line 3: not UTF-8"):
        load_texts(q)
    with pytest.raises(DataError, match="file not found"):
        load_texts(tmp_path / "missing.jsonl")
    (tmp_path / "t.csv").write_text("text\nx\n")
    with pytest.raises(DataError, match="unknown text file type .csv"):
        load_texts(tmp_path / "t.csv")


def test_kjv_from_file_and_missing_package(tmp_path, monkeypatch):
    p = write(
        tmp_path / "kjv.txt",
        [
            "Ge1:1 In the beginning God created the heaven and the earth.",
            "Ge1:2 And the earth was without form, and void.",
        ],
    )
    v = load_kjv(path=p)
    assert v["id"].tolist() == ["Ge1:1", "Ge1:2"] and v["text"].iloc[1] == "And the earth was without form, and void."
    assert kjv_passages(v, 2)["id"].tolist() == ["Ge1:1-Ge1:2"]
    monkeypatch.setattr(text.shutil, "which", lambda name: None)
    monkeypatch.setattr(text, "KJV_FILES", (str(tmp_path / "nope.txt"),))
    with pytest.raises(DataError, match="apt-get install -y bible-kjv"):
        load_kjv()


def test_kjv_from_the_bible_command_or_clear_error():
    if shutil.which("bible") is None:  # the package is optional: then the error must say how to install it
        with pytest.raises(DataError, match="bible-kjv"):
            load_kjv()
        return
    v = load_kjv()
    assert len(v) == 31_102  # every verse of Genesis 1:1 to Revelation 22:21
    assert v["text"].iloc[0] == "In the beginning God created the heaven and the earth."
    assert v["id"].iloc[-1] == "Rev22:21"
