"""Each session's body read into a Session once per resourceVersion: status, the
poll and the children's events ask for it again and again.

The most recently used are kept, not all: a Session is a tree of small objects, and
ten thousand of them were a tenth of the operator's memory while most sessions
sleep untouched. A session not among them is read again from its body (about a
tenth of a millisecond).
"""

from __future__ import annotations

from collections import OrderedDict

from usersession_operator.session.model import Defaults, InvalidSession, Session
from usersession_operator.session.spec import session_from_body
from usersession_operator.state import ClusterState, Key

# Sessions kept parsed: more than are ever busy at once in a poll or a burst of events.
KEPT = 2048


class ParsedSessions:
    def __init__(self, state: ClusterState, defaults: Defaults, kept: int = KEPT) -> None:
        self.state = state
        self.defaults = defaults
        self.kept = kept
        self._parsed: OrderedDict[Key, tuple[str, Session | InvalidSession]] = OrderedDict()

    def get(self, key: Key) -> Session | InvalidSession:
        """The session as the state holds it now (it must hold it)."""
        body = self.state.sessions[key]
        version = str(body.get("metadata", {}).get("resourceVersion") or "")
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version and version:
            self._parsed.move_to_end(key)
            return cached[1]
        parsed: Session | InvalidSession
        try:
            parsed = session_from_body(body, self.defaults)
        except InvalidSession as exc:
            parsed = exc
        self._parsed[key] = (version, parsed)
        self._parsed.move_to_end(key)
        if len(self._parsed) > self.kept:
            self._parsed.popitem(last=False)
        return parsed

    def live(self, key: Key) -> Session | None:
        """The session, unless it is gone, going away or invalid (then its children
        and lists are left alone)."""
        body = self.state.sessions.get(key)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return None
        session = self.get(key)
        return None if isinstance(session, InvalidSession) else session

    def forget(self, key: Key) -> None:
        self._parsed.pop(key, None)
