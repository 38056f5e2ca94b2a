"""Where a session's data lives in Redis: every key and channel name, in one place.

Key layout of one session, all derived from its queue (list) name Q:
  Q               the list producers LPUSH to and KEDA measures
  Q:processing    where a worker parks a message it took (reliable-queue pattern)
  Q:reply:<id>    replies a worker posts back for a chat message
  Q:reply:<id>:pending   a chat message sent and not answered yet
and, per Redis database, one pub/sub channel:
  usersession:work@<db>   the session API publishes Q there after pushing to Q,
                          so the operator hears of the work even where keyspace
                          notifications are off
"""

from __future__ import annotations


def default_queue_name(namespace: str, name: str) -> str:
    return f"usersession:{namespace}:{name}"


def processing_key(queue: str) -> str:
    """Where a worker parks the message it is handling (the reliable-queue pattern).

    A message there is in flight: KEDA keeps the session awake for it, and the
    next worker to start handles it again if its predecessor died.
    """
    return f"{queue}:processing"


def reply_key(queue: str, message_id: str) -> str:
    return f"{queue}:reply:{message_id}"


def pending_key(queue: str, message_id: str) -> str:
    """Marks a chat message as issued and unanswered, so an unknown id can be told apart.

    Under the reply prefix on purpose: the operator's finalizer cleans it up too.
    """
    return f"{reply_key(queue, message_id)}:pending"


def reply_keys_pattern(queue: str) -> str:
    """SCAN pattern for reply keys, with glob characters in the queue name escaped."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in queue)
    return f"{escaped}:reply:*"


def work_channel(database: int) -> str:
    """The channel producers may PUBLISH a queue name on, after pushing to it."""
    return f"usersession:work@{database}"


def keyspace_channel(database: int, key: str) -> str:
    """Where Redis announces changes to key (with notify-keyspace-events K)."""
    return f"__keyspace@{database}__:{key}"
