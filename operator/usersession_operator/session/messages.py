"""The wire format of what the API puts on a session's Redis list, and of replies.

A queue message is one JSON object:
  {"id": "<uuid>", "type": "wake" | "chat", "text": "<chat text>" | null,
   "reply_to": "<redis key>" | null, "sent_at": "<RFC 3339 UTC>"}
A worker answers a chat message by LPUSHing a reply object to its `reply_to`
key (and setting an expiry):
  {"id": "<the message id>", "text": "<answer>", "replied_at": "<RFC 3339 UTC>"}
Wake messages only exist to make the list non-empty so KEDA activates the
session; workers drop them.

reply_to is always keys.reply_key(queue, id), so the operator's finalizer, which
deletes "<queue>:reply:*", finds every reply. The message id is what a worker
makes its handling idempotent by: a message handled twice (at-least-once
delivery) carries the same id both times.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

from usersession_operator.session.keys import reply_key

WAKE: Literal["wake"] = "wake"
CHAT: Literal["chat"] = "chat"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Message:
    id: str
    type: Literal["wake", "chat"]
    text: str | None
    reply_to: str | None
    sent_at: str

    @classmethod
    def wake(cls) -> Message:
        return cls(str(uuid.uuid4()), WAKE, None, None, _now())

    @classmethod
    def chat(cls, queue: str, text: str) -> Message:
        message_id = str(uuid.uuid4())
        return cls(message_id, CHAT, text, reply_key(queue, message_id), _now())

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, raw: str | bytes) -> Message:
        data = _object(raw, "message")
        kind = data.get("type")
        if kind not in (WAKE, CHAT):
            raise ValueError(f"message type must be wake or chat, got {kind!r}")
        message_id, sent_at = data.get("id"), data.get("sent_at")
        if not isinstance(message_id, str) or not isinstance(sent_at, str):
            raise ValueError("message id and sent_at must be strings")
        text, reply_to = data.get("text"), data.get("reply_to")
        if kind == CHAT and not (isinstance(text, str) and isinstance(reply_to, str)):
            raise ValueError("a chat message needs text and reply_to strings")
        return cls(message_id, kind, text, reply_to, sent_at)


@dataclass(frozen=True)
class Reply:
    id: str
    text: str
    replied_at: str | None

    @classmethod
    def decode(cls, raw: str | bytes, message_id: str) -> Reply:
        """A worker's reply; a bare string is accepted as the text, for simple workers."""
        try:
            data = _object(raw, "reply")
        except ValueError:
            return cls(message_id, raw.decode() if isinstance(raw, bytes) else raw, None)
        text = data.get("text")
        replied_at = data.get("replied_at")
        return cls(
            message_id,
            text if isinstance(text, str) else json.dumps(text),
            replied_at if isinstance(replied_at, str) else None,
        )


def _object(raw: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object")
    return data
