"""On-disk cache of HTTP model responses, so a study that stops half-way resumes without paying twice."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from rote.core.errors import BackendError


class ResponseCache:
    """SQLite store of parsed responses keyed by a SHA-256 of (model, endpoint, request parameters).

    Each `put` is one committed transaction, so a crash loses at most the response in flight and never corrupts
    earlier ones; several processes may share the file (SQLite locks it).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                "endpoint TEXT, response TEXT NOT NULL, created REAL)"
            )
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise BackendError(
                f"{self.path}: not a usable response cache ({exc}); delete it or pass another cache folder"
            ) from None
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, endpoint: str, params: dict[str, Any]) -> str:
        blob = json.dumps(
            {"model": model, "endpoint": endpoint, "params": params},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, model: str, endpoint: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (key, model, endpoint, json.dumps(response, ensure_ascii=False), time.time()),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
