"""Where kopf keeps its per-object bookkeeping: in the operator's memory, not in the object.

kopf's default storages write a handler's progress and the last handled
configuration into each UserSession's annotations: two or three extra API
writes per new session, and again on every spec change. Neither has to survive
a restart here, because every handler is level-based (reconcile compares the
live children with the wanted ones and writes only what differs):

- the last handled configuration tells an update from a creation. After a
  restart every session looks new once, and its create handler does what resume
  would have done: nothing, when nothing changed.
- a handler's progress (retry count, start time) drives retries. After a
  restart a failing handler starts counting again, so a finalizer's give-up
  deadline (cleanup_timeout_seconds) restarts with the operator.

One write remains on the retry path: when a handler asks to be retried later,
kopf wakes itself up by touching an annotation, which produces the watch event
that brings the object back.
"""

from __future__ import annotations

import json
from typing import Any

import kopf

_Record = Any  # kopf.ProgressRecord: a TypedDict


class MemoryProgressStorage(kopf.AnnotationsProgressStorage):
    """Handler progress per object uid; touch() (the wake-up write) is kopf's own."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix=prefix)
        self._records: dict[tuple[str, str], _Record] = {}

    def fetch(self, *, key: Any, body: Any) -> Any:
        return self._records.get((body.metadata.uid, key))

    def store(self, *, key: Any, record: Any, body: Any, patch: Any) -> None:
        self._records[(body.metadata.uid, key)] = dict(record)

    def purge(self, *, key: Any, body: Any, patch: Any) -> None:
        self._records.pop((body.metadata.uid, key), None)

    def forget(self, uid: str) -> None:
        for record in [k for k in self._records if k[0] == uid]:
            del self._records[record]


class MemoryDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """The last handled configuration per object uid, kept as compact JSON.

    Built as kopf's annotation storage builds it, so an annotation left by an
    older release of this operator is not mistaken for a change.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix=prefix, key="last-handled-configuration")
        self._essences: dict[str, str] = {}

    def fetch(self, *, body: Any) -> Any:
        encoded = self._essences.get(body.metadata.uid)
        return json.loads(encoded) if encoded is not None else None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        self._essences[body.metadata.uid] = json.dumps(essence, separators=(",", ":"))

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)


class Bookkeeping:
    """Both storages, installed into kopf's settings; forget() when an object is gone."""

    def __init__(self, prefix: str) -> None:
        self.progress = MemoryProgressStorage(prefix)
        self.diffbase = MemoryDiffBaseStorage(prefix)

    def install(self, settings: kopf.OperatorSettings) -> None:
        settings.persistence.progress_storage = self.progress
        settings.persistence.diffbase_storage = self.diffbase

    def forget(self, uid: str) -> None:
        self.progress.forget(uid)
        self.diffbase.forget(uid)
