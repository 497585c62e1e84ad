"""On-disk caches keyed by file content: aligned crops (detection + alignment done once) and
embeddings (model work done once). One SQLite file each; safe across processes and restarts.

Keys: blake2b of the file bytes + the settings that change the result (detector, crop size,
margin; plus the encoder fingerprint for embeddings). A renamed or moved photo is still a hit;
an edited photo is a miss.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import cv2
import numpy as np


class _Store:
    def __init__(self, path: Path, table: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.table = table
        self._local = threading.local()
        with self._conn() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB, meta TEXT)")

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = c
        return c

    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, dict]]:
        out: dict[str, tuple[bytes, dict]] = {}
        c = self._conn()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT key, value, meta FROM {self.table} WHERE key IN ({','.join('?' * len(chunk))})"
            for k, v, m in c.execute(q, chunk):
                out[k] = (v, json.loads(m) if m else {})
        return out

    def put_many(self, items: list[tuple[str, bytes, dict]]) -> None:
        if not items:
            return
        c = self._conn()
        c.execute("BEGIN")
        c.executemany(
            f"INSERT OR REPLACE INTO {self.table} (key, value, meta) VALUES (?, ?, ?)",
            [(k, v, json.dumps(m)) for k, v, m in items],
        )
        c.execute("COMMIT")

    def __len__(self) -> int:
        return self._conn().execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]


class EmbeddingCache(_Store):
    def __init__(self, path: Path):
        super().__init__(path, "embeddings")

    def get(self, keys: list[str]) -> dict[str, tuple[np.ndarray, dict]]:
        return {k: (np.frombuffer(v, np.float32).copy(), m) for k, (v, m) in self.get_many(keys).items()}

    def put(self, items: list[tuple[str, np.ndarray, dict]]) -> None:
        self.put_many([(k, np.asarray(e, np.float32).tobytes(), m) for k, e, m in items])


class CropCache(_Store):
    """Aligned crops stored losslessly (PNG) with their detection record."""

    def __init__(self, path: Path):
        super().__init__(path, "crops")

    def get(self, keys: list[str]) -> dict[str, tuple[np.ndarray, dict]]:
        out = {}
        for k, (v, m) in self.get_many(keys).items():
            bgr = cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_COLOR)
            out[k] = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), m)
        return out

    def put(self, items: list[tuple[str, np.ndarray, dict]]) -> None:
        rows = []
        for k, crop, m in items:
            ok, buf = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            rows.append((k, buf.tobytes(), m))
        self.put_many(rows)
