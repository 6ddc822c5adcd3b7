"""Key material for the sandbox gateways, generated on first start and kept on disk.

Real providers issue the gateway (platform) key and let the merchant upload the public half of its
own key. The sandbox plays both roles for developer convenience: it generates a gateway key pair
and a merchant key pair, and merchants (our adapters, third-party SDKs) read the merchant private
key and gateway public key from the same directory. Persisting them means a restarted sandbox
keeps accepting the merchant configuration it handed out.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from payments.signing import generate_private_key, private_key_pem, public_key_pem


@dataclass(frozen=True, slots=True)
class SandboxKeys:
    gateway_private_key: str
    gateway_public_key: str
    merchant_private_key: str
    merchant_public_key: str
    identity: dict[str, str]  # non-key identifiers and secrets (APIv3 key, serial numbers)

    def __repr__(self) -> str:
        return f"SandboxKeys(identity keys={sorted(self.identity)})"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _random_text(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def default_identity(gateway: str) -> dict[str, str]:
    if gateway == "wechatpay":
        return {
            "apiv3_key": _random_text(32),
            "merchant_serial_no": secrets.token_hex(20).upper(),
            "platform_public_key_id": "PUB_KEY_ID_" + secrets.token_hex(16).upper(),
        }
    return {}


def load_or_create_keys(directory: Path | str, gateway: str) -> SandboxKeys:
    """Read ``directory/gateway/*``; create whatever is missing (idempotent).

    Several processes start at once against one key folder (API workers, the sandbox, compose
    services sharing a volume): an exclusive lock on the folder makes exactly one of them create
    the keys and every other one read the finished files.
    """
    folder = Path(directory) / gateway
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pems: dict[str, str] = {}
        for role in ("gateway", "merchant"):
            private_path = folder / f"{role}_private.pem"
            public_path = folder / f"{role}_public.pem"
            if not (private_path.exists() and public_path.exists()):
                key = generate_private_key()
                _write_secret(private_path, private_key_pem(key))
                public_path.write_text(public_key_pem(key.public_key()))
            pems[f"{role}_private_key"] = private_path.read_text()
            pems[f"{role}_public_key"] = public_path.read_text()
        identity_path = folder / "identity.json"
        if not identity_path.exists():
            _write_secret(identity_path, json.dumps(default_identity(gateway), indent=2))
        identity = json.loads(identity_path.read_text())
    return SandboxKeys(identity=identity, **pems)
