"""Bearer tokens: each belongs either to one user id or is an admin token.

The token source is a mapping, as JSON or YAML, from token to
{"user": "<user id>"} or {"admin": true}. It comes from a file (a mounted
Secret, re-read when the file changes, so tokens rotate without a restart) or
from an environment variable.

Tokens are kept only as SHA-256 digests and every digest is compared with
hmac.compare_digest, with no early exit: neither a dict lookup nor the
position of a match leaks, through timing, how much of a guess was right.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from usersession_operator.sessionapi.errors import unauthorized


class TokenConfigError(ValueError):
    """The token source is malformed; the message says where, never which token."""


@dataclass(frozen=True)
class Principal:
    user: str | None  # None for admin tokens
    admin: bool = False

    def may_access(self, owner: str) -> bool:
        return self.admin or self.user == owner


def parse_tokens(text: str) -> list[tuple[bytes, Principal]]:
    try:
        raw: Any = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise TokenConfigError(f"token source is neither JSON nor YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TokenConfigError("token source must map tokens to {user: ...} or {admin: true}")
    entries = []
    for index, (token, grant) in enumerate(raw.items(), start=1):
        # Entries are numbered, not named: an error message must not print a token.
        where = f"token entry {index}"
        if not isinstance(token, str) or len(token) < 16:
            raise TokenConfigError(f"{where}: tokens must be strings of at least 16 characters")
        entries.append((_digest(token), _principal(grant, where)))
    return entries


def _principal(grant: Any, where: str) -> Principal:
    if not isinstance(grant, dict):
        raise TokenConfigError(f'{where}: expected {{"user": "<id>"}} or {{"admin": true}}')
    if grant.get("admin") is True and "user" not in grant:
        return Principal(user=None, admin=True)
    user = grant.get("user")
    if isinstance(user, str) and user and set(grant) == {"user"}:
        return Principal(user=user)
    raise TokenConfigError(f'{where}: expected {{"user": "<id>"}} or {{"admin": true}}')


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    def __init__(self, *, tokens_file: str | None = None, tokens: str | None = None) -> None:
        if tokens_file is None and tokens is None:
            raise TokenConfigError("no token source: set a tokens file or inline tokens")
        self._file = Path(tokens_file) if tokens_file else None
        self._stamp: tuple[float, int] | None = None
        self._entries = parse_tokens(tokens) if tokens is not None else []
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        if self._file is None:
            return
        stat = self._file.stat()
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            # A half-written file fails to parse: keep the previous tokens then.
            entries = parse_tokens(self._file.read_text())
            self._entries, self._stamp = entries, stamp

    def authenticate(self, header: str | None) -> Principal:
        """The principal behind an Authorization header, or a 401 ApiError."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        # Rotation in progress or the file briefly gone: the last good set stays.
        with contextlib.suppress(OSError, TokenConfigError):
            self._reload_if_changed()
        candidate = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, candidate):
                found = principal
        if found is None:
            raise unauthorized()
        return found
