"""The buyer's clear identity, kept only for the customs payment declaration, then erased.

Why: the payment provider checks that the payer is the declared buyer, which needs the real name
and resident ID in clear at declaration time. Events keep them only masked and hashed (they are
forever); this vault keeps them encrypted (AES-256-GCM, key derived from the server secret), in
the read-model store, not the event store, and `erase` drops them once customs has answered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS customs_identity (order_id TEXT PRIMARY KEY, sealed TEXT NOT NULL)",
)


class IdentityVault:
    def __init__(self, store: Any, secret_key: bytes) -> None:
        self.store = store
        self._aead = AESGCM(hashlib.sha256(b"customs-identity-vault:" + secret_key).digest())
        self._queue: queue.SimpleQueue[tuple[tuple[UUID, str, str], Future]] = queue.SimpleQueue()
        self._flusher: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put_soon(self, order_id: UUID, name: str, resident_id: str) -> Future:
        """Store with the next batch: one commit for every identity waiting, as the event writer
        does for orders (a commit per order cost a third of order throughput). Sealed there
        too, not on the caller's event loop, which a sale's claims keep busy."""
        with self._start_lock:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush, name="vault", daemon=True)
                self._flusher.start()
        done: Future = Future()
        self._queue.put(((order_id, name, resident_id), done))
        return done

    def _flush(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._insert([(str(o), self._seal(o, name, rid)) for (o, name, rid), _ in batch])
            except Exception as exc:
                log.warning("customs identity vault: %s identities not stored (%s)", len(batch),
                            type(exc).__name__)  # fmt: skip
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)

    def _insert(self, rows: list[tuple[str, str]]) -> None:
        with self.store.transaction() as cur:
            if getattr(self.store, "dialect", "") == "postgres":  # one statement for the batch
                # No wait for the WAL flush: only a database crash in the next ~200 ms could lose
                # these, and then the declaration asks for the payer's identity again (409).
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute(
                    "INSERT INTO customs_identity (order_id, sealed) SELECT * FROM"
                    " unnest(%s::text[], %s::text[]) ON CONFLICT (order_id) DO NOTHING",
                    ([r[0] for r in rows], [r[1] for r in rows]),
                )
            else:
                cur.executemany(
                    "INSERT INTO customs_identity (order_id, sealed) VALUES (%s, %s)"
                    " ON CONFLICT (order_id) DO NOTHING",
                    rows,
                )

    def _seal(self, order_id: UUID, name: str, resident_id: str) -> str:
        nonce = os.urandom(12)
        plain = json.dumps({"name": name, "resident_id": resident_id}).encode()
        return (nonce + self._aead.encrypt(nonce, plain, order_id.bytes)).hex()

    def migrate(self) -> None:
        with self.store.transaction() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)

    def put(self, order_id: UUID, name: str, resident_id: str) -> None:
        sealed = self._seal(order_id, name, resident_id)
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO customs_identity (order_id, sealed) VALUES (%s, %s)"
                " ON CONFLICT (order_id) DO NOTHING",
                (str(order_id), sealed),
            )

    def get(self, order_id: UUID) -> tuple[str, str] | None:
        rows = self.store.query(
            "SELECT sealed FROM customs_identity WHERE order_id = %s", (str(order_id),)
        )
        if not rows:
            return None
        raw = bytes.fromhex(rows[0][0])
        plain = json.loads(self._aead.decrypt(raw[:12], raw[12:], order_id.bytes))
        return plain["name"], plain["resident_id"]

    def erase_soon(self, order_id: UUID) -> None:
        """Forget an identity stored for an order that was refused (best effort, off-thread)."""
        threading.Thread(target=self.erase, args=(order_id,), daemon=True).start()

    def erase(self, order_id: UUID) -> None:
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM customs_identity WHERE order_id = %s", (str(order_id),))
