"""RSA helpers shared by the Alipay and WeChat Pay dialects and their sandboxes.

Both providers sign with SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256) and ship signatures as
base64 text, so one pair of functions serves adapters and sandboxes alike. Keys are accepted as PEM
or as the bare base64 body the provider consoles hand out, because merchants paste either.
"""

from __future__ import annotations

import base64
import binascii
import textwrap

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _as_pem(key_text: str, label: str) -> bytes:
    text = key_text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(textwrap.wrap("".join(text.split()), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def load_private_key(key_text: str) -> rsa.RSAPrivateKey:
    """Load a PKCS#8 or PKCS#1 RSA private key from PEM or bare base64."""
    pem = _as_pem(key_text, "PRIVATE KEY")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        key = serialization.load_pem_private_key(
            _as_pem(key_text, "RSA PRIVATE KEY"), password=None
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("expected an RSA private key")
    return key


def load_public_key(key_text: str) -> rsa.RSAPublicKey:
    """Load an RSA public key (SubjectPublicKeyInfo) from PEM or bare base64."""
    key = serialization.load_pem_public_key(_as_pem(key_text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("expected an RSA public key")
    return key


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign_sha256_rsa(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA signature, base64 without line breaks."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_sha256_rsa(key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True only for a well-formed base64 signature that verifies over ``message``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
