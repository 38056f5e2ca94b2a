from __future__ import annotations

import json

import pytest

from usersession_operator.session.keys import pending_key, reply_key, reply_keys_pattern
from usersession_operator.session.messages import Message, Reply

QUEUE = "usersession:team-a:5f0c"


def test_chat_messages_carry_an_id_and_the_reply_key_the_operator_cleans_up() -> None:
    message = Message.chat(QUEUE, "Hello!")
    wire = json.loads(message.encode())
    assert set(wire) == {"id", "type", "text", "reply_to", "sent_at"}
    assert wire["type"] == "chat"
    assert wire["text"] == "Hello!"
    assert wire["reply_to"] == reply_key(QUEUE, message.id) == f"{QUEUE}:reply:{message.id}"
    assert wire["sent_at"].endswith("Z")
    assert Message.decode(message.encode()) == message


def test_every_key_the_api_writes_matches_the_finalizers_cleanup_pattern() -> None:
    import fnmatch

    message = Message.chat(QUEUE, "x")
    pattern = reply_keys_pattern(QUEUE)
    assert message.reply_to is not None
    assert fnmatch.fnmatchcase(message.reply_to, pattern)
    assert fnmatch.fnmatchcase(pending_key(QUEUE, message.id), pattern)


def test_wake_messages_have_no_text_or_reply_address() -> None:
    wire = json.loads(Message.wake().encode())
    assert wire["type"] == "wake"
    assert wire["text"] is None
    assert wire["reply_to"] is None


def test_ids_are_unique() -> None:
    assert len({Message.chat(QUEUE, "x").id for _ in range(100)}) == 100


def test_non_ascii_text_survives() -> None:
    message = Message.chat(QUEUE, "grüße 👋")
    assert "grüße 👋" in message.encode()
    assert Message.decode(message.encode().encode()).text == "grüße 👋"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"type": "shout", "id": "1", "sent_at": "t"}',
        '{"type": "chat", "id": "1", "sent_at": "t"}',
        '{"type": "wake", "sent_at": "t"}',
        b"\xff\xfe",
    ],
)
def test_malformed_messages_are_refused(raw: str | bytes) -> None:
    with pytest.raises(ValueError):
        Message.decode(raw)


def test_replies_decode_from_the_workers_json_or_a_bare_string() -> None:
    worker = json.dumps({"id": "m1", "text": "hi there", "replied_at": "2026-01-01T00:00:00Z"})
    assert Reply.decode(worker, "m1") == Reply("m1", "hi there", "2026-01-01T00:00:00Z")
    assert Reply.decode(b"plain answer", "m2") == Reply("m2", "plain answer", None)
    assert Reply.decode('{"text": {"rich": 1}}', "m3").text == '{"rich": 1}'
