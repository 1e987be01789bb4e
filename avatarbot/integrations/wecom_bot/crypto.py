"""WeCom AI bot webhook crypto: WXBizMsgCrypt with receiveid "" and JSON instead of XML.

sha1 over the sorted [token, timestamp, nonce, encrypt]; AES-256-CBC with key =
b64decode(EncodingAESKey + "="), IV = key[:16], PKCS#7 padded to 32; plaintext =
16 random bytes ‖ 4-byte big-endian length ‖ message ‖ receiveid (empty for AI bots).
The same key and cipher (without the framing) decrypt media files in webhook mode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from avatarbot.errors import InvalidInput, Unauthorized

BLOCK = 32


def aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise InvalidInput("EncodingAESKey must be 43 characters (32 bytes)")
    return key


def _cipher(key: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def aes_decrypt(key: bytes, data: bytes) -> bytes:
    """AES-256-CBC then PKCS#7 (1..32) removal; InvalidInput on any inconsistency."""
    if not data or len(data) % 16:
        raise InvalidInput("ciphertext length is not a multiple of 16")
    decryptor = _cipher(key).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise InvalidInput("bad padding: wrong key or damaged data")
    return plain[:-pad]


def aes_encrypt(key: bytes, data: bytes) -> bytes:
    pad = BLOCK - len(data) % BLOCK
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()


class BotCrypto:
    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str = "") -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id.encode("utf-8")

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        joined = "".join(sorted([self.token, timestamp, nonce, encrypt]))
        return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - WeCom's scheme

    def check(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        # Bytes: compare_digest raises TypeError on non-ASCII str (a hostile query).
        if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8")):
            raise Unauthorized("bad WeCom AI bot signature")

    def decrypt(self, encrypt: str) -> str:
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("WeCom AI bot message is not base64") from exc
        plain = aes_decrypt(self.key, data)
        if len(plain) < 20:
            raise InvalidInput("WeCom AI bot message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length or receive_id != self.receive_id:
            raise InvalidInput("WeCom AI bot message does not decrypt with this key")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("WeCom AI bot message is not UTF-8") from exc

    def encrypt(self, message: str) -> str:
        raw = message.encode("utf-8")
        framed = os.urandom(16) + struct.pack(">I", len(raw)) + raw + self.receive_id
        return base64.b64encode(aes_encrypt(self.key, framed)).decode("ascii")

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        self.check(signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def open_envelope(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        self.check(signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, message: str, *, nonce: str, timestamp: int) -> dict[str, object]:
        """An encrypted passive reply: {encrypt, msgsignature, timestamp, nonce}."""
        encrypt = self.encrypt(message)
        return {
            "encrypt": encrypt,
            "msgsignature": self.signature(str(timestamp), nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
