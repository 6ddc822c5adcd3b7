"""API keys and buyer tokens: high-entropy bearer secrets, stored only as SHA-256 hashes.

A key embeds its owner's id (`rcm_<id>_<secret>`), so checking one is a single aggregate read and
a constant-time compare, with no lookup table. The secret part is an HMAC of the owner id under
the server's secret key: an idempotent replay of the creating request can answer with the same
key without the key ever being stored; rotating bumps the counter. Slow password hashes are for
low-entropy passwords; 192 bits of HMAC output need none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

MERCHANT_PREFIX = "rcm"
BUYER_PREFIX = "rcb"


def issue(prefix: str, owner_id: UUID, secret_key: bytes, generation: int = 0) -> str:
    mac = hmac.new(secret_key, f"{prefix}:{owner_id}:{generation}".encode(), hashlib.sha256)
    secret = base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")
    return f"{prefix}_{owner_id.hex}_{secret}"


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(token: str) -> tuple[str, UUID] | None:
    """(prefix, owner id) of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in (MERCHANT_PREFIX, BUYER_PREFIX):
        return None
    try:
        return parts[0], UUID(hex=parts[1])
    except ValueError:
        return None


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(token), stored_hash)
