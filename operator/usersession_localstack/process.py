"""One control-plane component as a supervised child process."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self


class ComponentFailed(RuntimeError):
    """A component exited or never became healthy; the message carries its log tail."""


def with_parent(argv: Sequence[str]) -> list[str]:
    """argv, run so that it dies with this process (start it with spawn()).

    If the Python process is killed outright (SIGKILL, OOM), its finally blocks
    never run; the kernel then sends the child SIGTERM (PR_SET_PDEATHSIG, which
    survives exec). util-linux's setpriv sets it before exec'ing the command: a
    preexec_fn would run Python between fork and exec in a process with threads
    (gRPC's, kopf's), which can crash the child before it starts.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)


# The kernel's "parent" for PR_SET_PDEATHSIG is the thread that forked, not the
# process: a child started from a short-lived thread (a test's, or a chaos fault
# that restarts the API server) would get SIGTERM the moment that thread ends.
# Every child is therefore forked by this one thread, which lives as long as the
# process does.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen(with_parent(argv), **popen), forked by the long-lived spawner
    thread so that the child dies with this process and only with it."""
    argv = with_parent(argv)
    return _SPAWNER.submit(lambda: subprocess.Popen(argv, **popen)).result()


class Component:
    def __init__(
        self, name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        # How long stop() waits after SIGTERM before SIGKILL.
        self.grace = 10.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._proc = spawn(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: we stop it and its children
            )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(
        self, healthy: Callable[[], bool], timeout: float, what: str = "healthy"
    ) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running():
                raise ComponentFailed(
                    f"{self.name} exited with code {self._proc.returncode if self._proc else '?'}"
                    f" before it was {what}; last log lines ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                if healthy():
                    return
            except Exception as exc:
                last_error = exc
            time.sleep(0.2)
        raise ComponentFailed(
            f"{self.name} was not {what} after {timeout:.0f}s (last check: {last_error!r});"
            f" last log lines ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        stop_all([self])

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would end it: no shutdown at all."""
        if self._proc is not None:
            _signal(self._proc, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: it keeps its sockets open and answers nothing (a hung server)."""
        if self._proc is not None:
            _signal(self._proc, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            _signal(self._proc, signal.SIGCONT)


def stop_all(components: Iterable[Component]) -> None:
    """SIGTERM every component at once, then wait for each up to its own grace: stopped
    one after another, their shutdown times would add up (a Ctrl-C taking a minute)."""
    started = [c for c in components if c._proc is not None]
    _stop([(c._proc, c.grace) for c in started if c._proc is not None])


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """stop_all for processes started in sessions of their own, with one grace."""
    _stop([(proc, grace) for proc in procs])


def _stop(procs: Sequence[tuple[subprocess.Popen[bytes], float]]) -> None:
    for proc, grace in procs:
        _signal(proc, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    signalled = time.monotonic()
    for proc, grace in procs:
        _wait_or_kill(proc, max(0.0, signalled + grace - time.monotonic()))


def stop_process_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM a process started in its own session, SIGKILL after grace (at once if 0)."""
    _signal(proc, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    _wait_or_kill(proc, grace)


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)


def _wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL)
        proc.wait(timeout=5)


def argv(binary: Path, flags: dict[str, object]) -> list[str]:
    """A command line from flag -> value, in the --flag=value form every component accepts."""
    return [str(binary)] + [f"{flag}={value}" for flag, value in flags.items()]


@contextlib.contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with these variables set (None: unset) for the block, then as before.

    For an operator run in this process (kopf's runner reads its settings from
    the environment), so one test module's settings never leak into the next.
    """
    saved = {key: os.environ.get(key) for key in changes}
    try:
        _set_environment(changes)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Started:
    """A service of the stack as a context manager: started on entry (stopped again
    when starting fails half-way, so nothing is left running), stopped on exit."""

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
