"""Processes of the local stack die with it, even when it is killed outright, and
only with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from usersession_localstack.loopback import wait_for
from usersession_localstack.process import spawn, stop_process_group

# A parent that starts `sleep` the way the stack starts its components, prints the
# child's pid, and waits to be killed.
PARENT = """
import sys, time
from usersession_localstack.process import spawn
child = spawn(["sleep", "60"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        # A zombie still answers signal 0; its state says it is gone.
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_a_child_gets_sigterm_when_its_parent_is_killed_outright() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.2)
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)  # no finally block, no cleanup: only the kernel
    parent.wait()
    wait_for(lambda: not _alive(child), timeout=10)


def test_a_child_started_from_a_thread_outlives_that_thread() -> None:
    # The chaos run restarts the API server from a fault's thread: with the death
    # signal tied to the forking thread, the server got SIGTERM as the thread ended.
    started: list[subprocess.Popen[bytes]] = []

    def start_then_end() -> None:
        started.append(spawn(["sleep", "60"], start_new_session=True))
        time.sleep(1)  # past setpriv's prctl: the death signal is armed when we end

    thread = threading.Thread(target=start_then_end)
    thread.start()
    thread.join()
    (child,) = started
    try:
        time.sleep(0.5)
        assert child.poll() is None, f"the child ended with {child.returncode}"
    finally:
        stop_process_group(child, grace=0)
