"""Feishu event crypto: AES-256-CBC with key SHA256(encrypt_key), and the request signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from avatarbot.errors import InvalidInput, Unauthorized


def _key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def decrypt(encrypt_key: str, ciphertext_b64: str) -> str:
    """Decrypt the `encrypt` field of an event body (base64 of IV ‖ ciphertext, PKCS7)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        raw = base64.b64decode(ciphertext_b64, validate=False)
    except ValueError as exc:
        raise InvalidInput("encrypted body is not base64") from exc
    if len(raw) < 32 or len(raw) % 16:
        raise InvalidInput("encrypted body has a bad length")
    iv, body = raw[:16], raw[16:]
    decryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise InvalidInput("encrypted body does not decrypt with this key")
    try:
        return padded[:-pad].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("encrypted body does not decrypt with this key") from exc


def encrypt(encrypt_key: str, plaintext: str, iv: bytes | None = None) -> str:
    """The inverse of decrypt (used by the fake platform in tests and by self-checks)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = iv or os.urandom(16)
    data = plaintext.encode("utf-8")
    pad = 16 - len(data) % 16
    data += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(data) + encryptor.finalize()).decode("ascii")


def signature(timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes) -> str:
    """X-Lark-Signature: hex(sha256(timestamp + nonce + encrypt_key + body))."""
    digest = hashlib.sha256()
    digest.update((timestamp + nonce + encrypt_key).encode("utf-8"))
    digest.update(raw_body)
    return digest.hexdigest()


def verify_signature(
    *, timestamp: str | None, nonce: str | None, sig: str | None, encrypt_key: str, raw_body: bytes
) -> None:
    """Raise Unauthorized unless the X-Lark-Signature header matches the body."""
    if not (timestamp and nonce and sig):
        raise Unauthorized("missing Feishu signature headers")
    expected = signature(timestamp, nonce, encrypt_key, raw_body)
    if not hmac.compare_digest(expected, sig.lower()):
        raise Unauthorized("bad Feishu signature")


def custom_bot_sign(timestamp: int, secret: str) -> str:
    """Signature of a Feishu custom group bot: base64(HMAC-SHA256(key=f"{ts}\\n{secret}", b""))."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")
