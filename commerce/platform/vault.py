"""The buyer's clear identity, kept only for the customs payment declaration, then erased.

Why: the payment provider checks that the payer is the declared buyer, which needs the real name
and resident ID in clear at declaration time. Events keep them only masked and hashed (they are
forever); this vault keeps them encrypted (AES-256-GCM, key derived from the server secret), in
the read-model store, not the event store, and `erase` drops them once customs has answered.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS customs_identity (order_id TEXT PRIMARY KEY, sealed TEXT NOT NULL)",
)


class IdentityVault:
    def __init__(self, store: Any, secret_key: bytes) -> None:
        self.store = store
        self._aead = AESGCM(hashlib.sha256(b"customs-identity-vault:" + secret_key).digest())

    def migrate(self) -> None:
        with self.store.transaction() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)

    def put(self, order_id: UUID, name: str, resident_id: str) -> None:
        nonce = os.urandom(12)
        plain = json.dumps({"name": name, "resident_id": resident_id}).encode()
        sealed = (nonce + self._aead.encrypt(nonce, plain, order_id.bytes)).hex()
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

    def erase(self, order_id: UUID) -> None:
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM customs_identity WHERE order_id = %s", (str(order_id),))
