"""Benchmark: chat round-trip latency and status read throughput of the session API.

Run: .venv/bin/python tests/benchmarks/bench_sessionapi.py [--messages 200] [--seconds 10]

Starts its own local cluster, the real operator, the API on a loopback port and
the reference worker (already awake); the API (the real `usersession-api`
command) and the worker each run as their own process. Prints numbers, asserts
nothing about them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import requests
import stack

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for

WORKER = Path(__file__).parents[2] / "examples" / "worker" / "worker.py"
TOKEN = "bench-token-0123456789abcdef"


def start_process(stack: contextlib.ExitStack, argv: list[str], env: dict[str, str]) -> None:
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def stop() -> None:
        process.terminate()
        process.wait(timeout=30)

    stack.callback(stop)


def answers(http: requests.Session, url: str) -> int:
    try:
        return http.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return 0


async def read_status(base: str, sid: str, seconds: float, concurrency: int) -> tuple[int, int]:
    """(requests answered 200, others) while `concurrency` clients loop for `seconds`."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    counts = [0, 0]
    stop = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            async with session.get(f"{base}/session/{sid}/status", headers=headers) as response:
                await response.read()
                counts[0 if response.status == 200 else 1] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(concurrency)))
    return counts[0], counts[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with LocalCluster() as cluster:
        address = f"{cluster.redis_host}:{cluster.redis_port}"
        ns = stack.namespace(cluster)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        with contextlib.ExitStack() as processes:
            # The real command in its own process, so its numbers are not shared
            # with this process's load generator, operator and GIL.
            start_process(
                processes,
                [str(Path(sys.executable).with_name("usersession-api"))],
                {
                    "KUBECONFIG": str(cluster.kubeconfig),
                    "SESSIONAPI_NAMESPACE": ns,
                    "SESSIONAPI_PORT": str(port),
                    "SESSIONAPI_REDIS_ADDRESS": address,
                    "SESSIONAPI_TOKENS": f"{TOKEN}: {{user: bench@example.com}}",
                    "SESSIONAPI_DEFAULT_IMAGE": "example.com/w:1",
                    "SESSIONAPI_LOG_LEVEL": "ERROR",
                },
            )
            wait_for(lambda: answers(http, f"{base}/health") == 200, timeout=30)
            processes.enter_context(stack.operator(cluster))
            sid = http.post(f"{base}/session/create", json={}).json()["id"]
            status = wait_for(
                lambda: (
                    (s := http.get(f"{base}/session/{sid}/status").json()).get("phase")
                    == "Sleeping"
                    and s
                ),
                timeout=60,
            )
            start_process(
                processes,
                [sys.executable, str(WORKER)],
                {
                    "SESSION_QUEUE": status["queue_name"],
                    "REDIS_HOST": cluster.redis_host,
                    "REDIS_PORT": str(cluster.redis_port),
                    "REDIS_PASSWORD": cluster.redis_password,
                },
            )
            # Warm up: the worker is connected and awake before measuring.
            http.post(f"{base}/session/{sid}/chat", json={"message": "warm up"})
            latencies = []
            for i in range(args.messages):
                start = time.perf_counter()
                response = http.post(f"{base}/session/{sid}/chat", json={"message": f"m{i}"})
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            ok, other = asyncio.run(read_status(base, sid, args.seconds, args.concurrency))

    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"chat round trip over {args.messages} messages (worker awake): "
        f"p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(
        f"status reads: {ok / args.seconds:.0f} req/s with {args.concurrency} concurrent clients "
        f"over {args.seconds:g} s ({other} non-200)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
