"""Feishu and WeCom crypto against the PROTOCOLS.md test vectors."""

from __future__ import annotations

import pytest

from avatarbot.errors import InvalidInput, Unauthorized
from avatarbot.integrations.feishu import crypto as feishu
from avatarbot.integrations.wecom.crypto import WecomCrypto, parse_xml

WECOM = {
    "token": "123456",
    "encoding_aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "corp_id": "wx49f0ab532d5d035a",
}
ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


def test_feishu_decrypt_vector() -> None:
    assert (
        feishu.decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == "hello world"
    )


def test_feishu_round_trip_and_wrong_key() -> None:
    sealed = feishu.encrypt("k1", '{"a": "你好"}')
    assert feishu.decrypt("k1", sealed) == '{"a": "你好"}'
    with pytest.raises(InvalidInput):
        feishu.decrypt("k2", sealed)
    with pytest.raises(InvalidInput):
        feishu.decrypt("k1", "not base64 at all!")


def test_feishu_signature() -> None:
    body = b'{"encrypt":"x"}'
    sig = feishu.signature("1700000000", "abc", "key", body)
    feishu.verify_signature(
        timestamp="1700000000", nonce="abc", sig=sig, encrypt_key="key", raw_body=body
    )
    with pytest.raises(Unauthorized):
        feishu.verify_signature(
            timestamp="1700000000", nonce="abc", sig=sig, encrypt_key="key", raw_body=body + b" "
        )
    with pytest.raises(Unauthorized):
        feishu.verify_signature(
            timestamp=None, nonce="abc", sig=sig, encrypt_key="key", raw_body=body
        )


def test_feishu_custom_bot_sign_is_hmac_of_empty_message() -> None:
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(
        hmac.new(b"1700000000\nsecret", b"", hashlib.sha256).digest()
    ).decode()
    assert feishu.custom_bot_sign(1700000000, "secret") == expected


def test_wecom_echo_vector() -> None:
    crypto = WecomCrypto(**WECOM)
    plain = crypto.verify_url(
        msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        timestamp="1411443780",
        nonce="437374425",
        echostr=ECHO,
    )
    assert plain == "5927782489442352469"
    with pytest.raises(Unauthorized):
        crypto.verify_url(
            msg_signature="0" * 40, timestamp="1411443780", nonce="437374425", echostr=ECHO
        )


def test_wecom_message_round_trip_and_tamper() -> None:
    crypto = WecomCrypto(**WECOM)
    envelope = parse_xml(
        crypto.encrypt("<xml><Content>你好</Content></xml>", nonce="n1", timestamp="17")
    )
    body = f"<xml><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>".encode()
    inner = crypto.decrypt(
        body=body, msg_signature=envelope["MsgSignature"], timestamp="17", nonce="n1"
    )
    assert parse_xml(inner)["Content"] == "你好"
    with pytest.raises(Unauthorized):
        crypto.decrypt(
            body=body, msg_signature=envelope["MsgSignature"], timestamp="18", nonce="n1"
        )
    other_corp = WecomCrypto(**{**WECOM, "corp_id": "wx_other"})
    with pytest.raises(InvalidInput):
        other_corp.decrypt(
            body=body, msg_signature=envelope["MsgSignature"], timestamp="17", nonce="n1"
        )
