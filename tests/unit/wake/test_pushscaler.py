"""The external-push scaler over a real gRPC connection, answering from the operator's readings."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from usersession_localstack.pki import make_pki
from usersession_operator.state import ClusterState, QueueReading
from usersession_operator.wake.externalscaler import externalscaler_pb2 as pb
from usersession_operator.wake.pushscaler import (
    METRIC,
    SERVICE,
    PushScaler,
    serve,
    tls_credentials,
)

NS, NAME = "team-a", "alice"
BODY = {"metadata": {"namespace": NS, "name": NAME}, "spec": {}}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """KEDA's side of the ExternalScaler service, as its gRPC client calls it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def method(name: str, response: Any, stream: bool = False) -> Any:
            call = channel.unary_stream if stream else channel.unary_unary
            return call(
                f"/{SERVICE}/{name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )

        self.IsActive = method("IsActive", pb.IsActiveResponse)
        self.StreamIsActive = method("StreamIsActive", pb.IsActiveResponse, stream=True)
        self.GetMetricSpec = method("GetMetricSpec", pb.GetMetricSpecResponse)
        self.StreamMetricSpec = method("StreamMetricSpec", pb.GetMetricSpecResponse, stream=True)
        self.GetMetrics = method("GetMetrics", pb.GetMetricsResponse)


Scenario = Callable[[PushScaler, Client], Awaitable[None]]


def served(scenario: Scenario) -> None:
    """Run scenario against a real server on a loopback port, with a real client."""

    async def main() -> None:
        state = ClusterState()
        state.upsert_session(BODY)
        scaler = PushScaler(state)
        port = _port()
        server = await serve(scaler, "127.0.0.1", port)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(scaler, Client(channel))
        finally:
            await server.stop(grace=0)

    asyncio.run(main())


def _ref(name: str = NAME) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace=NS)


@pytest.mark.parametrize(
    ("reading", "active", "work"),
    [
        (None, False, 0),  # never polled: the redis triggers decide
        (QueueReading(0, 0), False, 0),
        (QueueReading(2, 0), True, 2),
        (QueueReading(0, 1), True, 1),  # in flight counts as work
        (QueueReading(None, error="ConnectionError"), False, 0),
    ],
)
def test_is_active_and_metrics_follow_the_readings(
    reading: QueueReading | None, active: bool, work: int
) -> None:
    async def scenario(scaler: PushScaler, stub: Client) -> None:
        if reading is not None:
            scaler.state.queues[(NS, NAME)] = reading
        assert (await stub.IsActive(_ref())).result is active
        request = pb.GetMetricsRequest(scaledObjectRef=_ref(), metricName="m")
        metrics = await stub.GetMetrics(request)
        assert [(m.metricName, m.metricValue) for m in metrics.metricValues] == [("m", work)]
        spec = await stub.GetMetricSpec(_ref())
        assert [(s.metricName, s.targetSize) for s in spec.metricSpecs] == [(METRIC, 1)]

    served(scenario)


def test_the_stream_says_the_current_state_then_pushes_work_as_it_arrives() -> None:
    async def scenario(scaler: PushScaler, stub: Client) -> None:
        stream = stub.StreamIsActive(_ref())
        first = await asyncio.wait_for(stream.read(), 5)
        assert first.result is False
        assert scaler.streams() == 1
        scaler.state.queues[(NS, NAME)] = QueueReading(1, 0)
        scaler.work_arrived((NS, NAME))
        pushed = await asyncio.wait_for(stream.read(), 5)
        assert pushed.result is True
        stream.cancel()
        for _ in range(200):  # the server forgets a stream KEDA closed
            if scaler.streams() == 0:
                break
            await asyncio.sleep(0.01)
        assert scaler.streams() == 0

    served(scenario)


def test_a_session_the_operator_does_not_know_is_inactive() -> None:
    async def scenario(scaler: PushScaler, stub: Client) -> None:
        assert (await stub.IsActive(_ref("someone-else"))).result is False

    served(scenario)


def test_a_taken_port_is_refused_not_shared() -> None:
    async def main() -> None:
        scaler = PushScaler(ClusterState())
        port = _port()
        first = await serve(scaler, "127.0.0.1", port)
        try:
            with pytest.raises((OSError, RuntimeError)):
                await serve(scaler, "127.0.0.1", port)
        finally:
            await first.stop(grace=0)

    asyncio.run(main())


# -- TLS: KEDA verifies the operator's certificate ----------------------------------


def _tls_server(tls_dir: Path, scenario: Callable[[int], Awaitable[None]]) -> None:
    async def main() -> None:
        state = ClusterState()
        state.upsert_session(BODY)
        state.queues[(NS, NAME)] = QueueReading(1, 0)
        port = _port()
        server = await serve(PushScaler(state), "127.0.0.1", port, str(tls_dir))
        try:
            await scenario(port)
        finally:
            await server.stop(grace=0)

    asyncio.run(main())


async def _is_active(port: int, ca: Path | None) -> bool:
    """IsActive over TLS trusting ca, or over plain gRPC when ca is None."""
    target = f"localhost:{port}"
    channel = (
        grpc.aio.insecure_channel(target)
        if ca is None
        else grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca.read_bytes()))
    )
    async with channel:
        stub = Client(channel)
        return bool((await stub.IsActive(_ref(), timeout=5)).result)


def test_with_tls_a_client_trusting_the_ca_is_answered_and_plain_grpc_is_not(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")

    async def scenario(port: int) -> None:
        assert await _is_active(port, pki.ca_cert) is True
        with pytest.raises(grpc.aio.AioRpcError) as plain:
            await _is_active(port, None)
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
        stranger = make_pki(tmp_path / "stranger")  # another CA: not trusted
        with pytest.raises(grpc.aio.AioRpcError):
            await _is_active(port, stranger.ca_cert)

    _tls_server(pki.push_tls_dir, scenario)


def test_a_renewed_certificate_is_served_from_the_next_connection_without_a_restart(
    tmp_path: Path,
) -> None:
    first, renewed = make_pki(tmp_path / "first"), make_pki(tmp_path / "renewed")
    tls_dir = tmp_path / "mounted"
    shutil.copytree(first.push_tls_dir, tls_dir)

    async def scenario(port: int) -> None:
        assert await _is_active(port, first.ca_cert)
        # Half-written: the last good pair stays in service.
        (tls_dir / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\n")
        assert await _is_active(port, first.ca_cert)
        for name in ("tls.crt", "tls.key"):
            shutil.copy(renewed.push_tls_dir / name, tls_dir / name)
        assert await _is_active(port, renewed.ca_cert)
        with pytest.raises(grpc.aio.AioRpcError):
            await _is_active(port, first.ca_cert)

    _tls_server(tls_dir, scenario)


def test_an_unusable_certificate_directory_stops_the_server_naming_the_file(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    with pytest.raises(ValueError, match=r"cannot read .*missing/tls\.crt"):
        tls_credentials(tmp_path / "missing")
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    shutil.copy(pki.push_tls_dir / "tls.crt", mismatched / "tls.crt")
    shutil.copy(pki.admin_key, mismatched / "tls.key")  # someone else's key
    with pytest.raises(ValueError, match=r"mismatched/tls\.crt and .* are not"):
        tls_credentials(mismatched)
