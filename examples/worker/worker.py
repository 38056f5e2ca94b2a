"""Reference session worker: the program a UserSession's pod runs.

It consumes the session's Redis list with the reliable-queue pattern:

  BLMOVE <queue> <queue>:processing RIGHT LEFT   take the oldest message, parked
  ...handle it...
  LREM <queue>:processing 1 <message>            forget it once handled

A message is therefore always either in the queue, in the processing list or
handled. Delivery is at-least-once: a worker killed mid-message (SIGKILL, an
eviction, a crash) leaves it in the processing list, where KEDA still sees it
(so the session stays, or wakes back, up), and the next worker to start handles
everything it finds there before taking new work. A message whose handling had
already posted its reply is therefore answered twice at worst, never lost. On
SIGTERM the worker finishes the message in hand (within the pod's
terminationGracePeriodSeconds) and exits 0.

Chat messages are answered on their reply_to key (LPUSH + EXPIRE, in the
same transaction as the LREM, so a reply is never posted twice for one
handling). Wake messages only exist to make KEDA start the pod; they are
dropped. The message format is documented in the session API's messages.py.

Environment (set by the operator on the session container):
  SESSION_QUEUE, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD
  and, when the session has them: REDIS_USERNAME (an ACL user), REDIS_TLS=true,
  REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE (mutual TLS),
  REDIS_TLS_SERVER_NAME (the name on the server's certificate, if not REDIS_HOST)
Optional: WORKER_REPLY_TTL (seconds a reply is kept, default 3600),
          WORKER_REPLY_PREFIX (prepended to the echoed text, default "echo: "),
          WORKER_WORK_SECONDS (how long each chat message takes, default 0: stands
          in for real work, such as an agent's task that runs for minutes).

Replace answer() with the session's real work (an agent, a model call...).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import ssl
import sys
import time
from types import FrameType
from typing import Any

import redis

log = logging.getLogger("session-worker")

# How long one BLMOVE blocks: the latency of noticing SIGTERM while idle.
POLL_SECONDS = 1


class Worker:
    def __init__(
        self,
        conn: redis.Redis,
        queue: str,
        reply_ttl: int,
        prefix: str,
        work_seconds: float = 0.0,
    ) -> None:
        self.conn = conn
        self.queue = queue
        self.processing = f"{queue}:processing"
        self.reply_ttl = reply_ttl
        self.prefix = prefix
        self.work_seconds = work_seconds
        self.stopping = False

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the message in hand, then exiting", signum)
        self.stopping = True

    def run(self) -> None:
        self.recover()
        while not self.stopping:
            raw = self.conn.blmove(self.queue, self.processing, POLL_SECONDS, "RIGHT", "LEFT")
            if raw is not None:
                self.handle(raw)
        log.info("stopped")

    def recover(self) -> None:
        """Handle what a previous run took but never finished, oldest first."""
        left = self.conn.lrange(self.processing, 0, -1)
        if left:
            log.info("re-processing %d message(s) left by a previous run", len(left))
        for raw in reversed(left):
            self.handle(raw)

    def handle(self, raw: bytes) -> None:
        pipe = self.conn.pipeline(transaction=True)
        try:
            message = json.loads(raw)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            # Never retried: a message that cannot be read would block nothing but
            # would be re-read on every start. Logged (shortened) for a human.
            log.warning("dropping unreadable message: %r", raw[:200])
            message, kind = None, None
        if kind == "chat" and isinstance(message, dict) and message.get("reply_to"):
            log.info("handling chat message %s", message.get("id"))
            # A signal does not cut this short: SIGTERM only sets self.stopping.
            time.sleep(self.work_seconds)
            reply = {
                "id": message.get("id"),
                "text": answer(message.get("text") or "", self.prefix),
                "replied_at": _now(),
            }
            pipe.lpush(message["reply_to"], json.dumps(reply))
            pipe.expire(message["reply_to"], self.reply_ttl)
        elif kind not in ("wake", None):
            log.warning("ignoring message of unknown type %r", kind)
        pipe.lrem(self.processing, 1, raw)
        pipe.execute()


def answer(text: str, prefix: str) -> str:
    return prefix + text


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TlsConnection(redis.connection.Connection):
    """TLS with our own context and server name: redis-py's SSLConnection always
    checks the certificate against the host it dials."""

    def __init__(self, *, tls_context: ssl.SSLContext, server_name: str, **kwargs: Any) -> None:
        self.tls_context = tls_context
        self.server_name = server_name
        super().__init__(**kwargs)

    def _connect(self) -> Any:
        sock = super()._connect()
        try:
            return self.tls_context.wrap_socket(sock, server_hostname=self.server_name)
        except OSError:
            sock.close()
            raise


def tls_context(env: dict[str, str] | Any) -> ssl.SSLContext:
    """Verifying: the mounted CA if given, else the system's CAs."""
    context = ssl.create_default_context(cafile=env.get("REDIS_TLS_CA_FILE") or None)
    if env.get("REDIS_TLS_CERT_FILE"):
        context.load_cert_chain(env["REDIS_TLS_CERT_FILE"], env.get("REDIS_TLS_KEY_FILE"))
    return context


def connect(env: dict[str, str] | Any) -> redis.Redis:
    host = env.get("REDIS_HOST", "localhost")
    options: dict[str, Any] = {
        "host": host,
        "port": int(env.get("REDIS_PORT", "6379")),
        "db": int(env.get("REDIS_DB", "0")),
        "username": env.get("REDIS_USERNAME") or None,
        "password": env.get("REDIS_PASSWORD") or None,
        "socket_timeout": POLL_SECONDS + 10,
        "socket_connect_timeout": 10,
        "health_check_interval": 30,
    }
    if env.get("REDIS_TLS", "").lower() != "true":
        return redis.Redis(**options)
    pool = redis.ConnectionPool(
        connection_class=TlsConnection,
        tls_context=tls_context(env),
        server_name=env.get("REDIS_TLS_SERVER_NAME") or host,
        **options,
    )
    return redis.Redis(connection_pool=pool)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    queue = os.environ.get("SESSION_QUEUE")
    if not queue:
        log.error("SESSION_QUEUE is not set")
        return 2
    worker = Worker(
        connect(os.environ),
        queue,
        reply_ttl=int(os.environ.get("WORKER_REPLY_TTL", "3600")),
        prefix=os.environ.get("WORKER_REPLY_PREFIX", "echo: "),
        work_seconds=float(os.environ.get("WORKER_WORK_SECONDS", "0")),
    )
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    log.info("consuming %s", queue)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
