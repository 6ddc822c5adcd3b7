"""WeChat Pay APIv3 cryptography, shared by the adapter and the sandbox.

* ``authorization_header``: the merchant's request signature over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
* ``decrypt_resource``: callback payloads, AEAD_AES_256_GCM under the 32-byte APIv3 key; the
  ciphertext is base64(ct || 16-byte tag) and ``associated_data`` is the AAD.
* ``encrypt_sensitive``: personal data (ID numbers, names) for the platform, RSAES-OAEP with SHA-1
  and MGF1, which is what APIv3 and the wechatpayv3 SDK use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.port import BadSignature
from payments.signing import sign_sha256_rsa

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_TOLERANCE_SECONDS = 300


def authorization_header(
    *,
    method: str,
    path_with_query: str,
    body: str,
    mchid: str,
    serial_no: str,
    private_key: RSAPrivateKey,
    timestamp: int,
    nonce: str,
) -> str:
    message = f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n"
    signature = sign_sha256_rsa(private_key, message.encode())
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def decrypt_resource(resource: Mapping[str, str], apiv3_key: str) -> dict[str, Any]:
    """AEAD_AES_256_GCM: ciphertext is base64(ct || 16-byte tag), AAD is associated_data."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise BadSignature(f"unsupported resource algorithm {resource.get('algorithm')!r}")
    try:
        plaintext = AESGCM(apiv3_key.encode()).decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"]),
            (resource.get("associated_data") or "").encode(),
        )
    except (InvalidTag, KeyError, ValueError) as exc:
        raise BadSignature("notification resource failed to decrypt") from exc
    return json.loads(plaintext)


def encrypt_sensitive(platform_key: RSAPublicKey, text: str) -> str:
    """RSAES-OAEP (SHA-1, MGF1) with the platform public key, base64."""
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    return base64.b64encode(platform_key.encrypt(text.encode(), oaep)).decode()
