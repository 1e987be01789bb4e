"""WeCom callback crypto through wechatpy's enterprise WeChatCrypto (imported lazily)."""

from __future__ import annotations

from typing import Any

from avatarbot.errors import InvalidInput, Unauthorized

MAX_XML_BYTES = 1024 * 1024


class WecomCrypto:
    def __init__(self, *, token: str, encoding_aes_key: str, corp_id: str) -> None:
        from wechatpy.enterprise.crypto import WeChatCrypto

        self._crypto = WeChatCrypto(token, encoding_aes_key, corp_id)

    def verify_url(self, *, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: check the signature and return the decrypted echostr."""
        from wechatpy.exceptions import InvalidSignatureException

        try:
            plain = self._crypto.check_signature(msg_signature, timestamp, nonce, echostr)
        except InvalidSignatureException as exc:
            raise Unauthorized("bad WeCom signature") from exc
        except Exception as exc:  # wrong corp id, garbage base64, bad padding
            raise Unauthorized("WeCom echostr does not decrypt") from exc
        return plain.decode("utf-8") if isinstance(plain, bytes) else str(plain)

    def decrypt(self, *, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """POST body: verify and decrypt the <Encrypt> element; returns the inner XML."""
        from wechatpy.exceptions import InvalidSignatureException

        if len(body) > MAX_XML_BYTES:
            raise InvalidInput("WeCom body too large")
        try:
            plain = self._crypto.decrypt_message(body, msg_signature, timestamp, nonce)
        except InvalidSignatureException as exc:
            raise Unauthorized("bad WeCom signature") from exc
        except Exception as exc:
            raise InvalidInput("WeCom body does not decrypt") from exc
        return plain.decode("utf-8") if isinstance(plain, bytes) else str(plain)

    def encrypt(self, xml: str, *, nonce: str, timestamp: str) -> str:
        """The envelope a real WeCom server would post (used by the fake platform in tests)."""
        return str(self._crypto.encrypt_message(xml, nonce, timestamp))


def parse_xml(xml: str) -> dict[str, Any]:
    """The children of a WeCom <xml> root as a dict (nested elements as nested dicts).

    The stdlib parser resolves no external entities, and Python's expat refuses entity
    expansion bombs; the body was also authenticated by its signature before we get here.
    """
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 - see the docstring
    except ElementTree.ParseError as exc:
        raise InvalidInput("WeCom message is not valid XML") from exc
    if root.tag != "xml":
        raise InvalidInput("WeCom message has no <xml> root")
    return _children(root)


def _children(element: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for child in element:
        data[child.tag] = _children(child) if len(child) else (child.text or "")
    return data
