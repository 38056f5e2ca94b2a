"""KEDA's external-push scaler, served by the operator: the fast way to wake a session.

KEDA polls each ScaledObject's redis triggers on its own clock
(pollingIntervalSeconds), so without this a message waits up to that long.
Each ScaledObject also names this server in an external-push trigger: KEDA
keeps a StreamIsActive stream open per session, and the operator sends `true`
on it the moment it sees work arrive (a keyspace notification, or its own
poll). KEDA then scales at once, through the scale subresource, as it always
does: KEDA still owns replicas. Answers come from the operator's last readings
of the session's lists; a session it knows nothing about is inactive, so the
redis triggers stay the authority and this path can only add speed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from usersession_operator.state import ClusterState, Key
from usersession_operator.wake.externalscaler import externalscaler_pb2 as pb

log = logging.getLogger(__name__)

# The service's full name in KEDA's externalscaler.proto.
SERVICE = "externalscaler.ExternalScaler"
# The metric KEDA asks for: messages waiting plus in flight, one replica per message
# (maxReplicaCount caps it at one anyway).
METRIC = "session-work"


class PushScaler:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        # Open StreamIsActive streams by (namespace, ScaledObject name); KEDA
        # may open one before the operator has seen the session.
        self._streams: dict[Key, set[asyncio.Queue[bool]]] = {}

    def work_arrived(self, key: Key) -> None:
        """Tell KEDA, on every open stream for the session, that it has work."""
        for stream in self._streams.get(self.state.child_key(key), ()):
            stream.put_nowait(True)

    def streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def subscribe(self, instance: Key) -> asyncio.Queue[bool]:
        """A stream for one ScaledObject (namespace, name): `True` on it means work."""
        stream: asyncio.Queue[bool] = asyncio.Queue()
        self._streams.setdefault(instance, set()).add(stream)
        return stream

    def unsubscribe(self, instance: Key, stream: asyncio.Queue[bool]) -> None:
        streams = self._streams.get(instance, set())
        streams.discard(stream)
        if not streams:
            self._streams.pop(instance, None)

    def _busy(self, ref: Any) -> bool:
        key = self.state.session_for_instance(ref.namespace, ref.name)
        reading = self.state.queues.get(key) if key else None
        return reading is not None and reading.busy

    def _work(self, ref: Any) -> int:
        key = self.state.session_for_instance(ref.namespace, ref.name)
        reading = self.state.queues.get(key) if key else None
        return (reading.depth or 0) + (reading.processing or 0) if reading else 0

    # -- the gRPC service (method names are the proto's) ------------------------------

    async def IsActive(self, request: Any, context: Any) -> Any:
        return pb.IsActiveResponse(result=self._busy(request))

    async def StreamIsActive(self, request: Any, context: Any) -> AsyncIterator[Any]:
        instance = (request.namespace, request.name)
        stream = self.subscribe(instance)
        try:
            # The current state first, so a session that got work while KEDA
            # was (re)connecting is not left waiting for the next message.
            yield pb.IsActiveResponse(result=self._busy(request))
            while True:
                yield pb.IsActiveResponse(result=await stream.get())
        finally:
            self.unsubscribe(instance, stream)

    async def GetMetricSpec(self, request: Any, context: Any) -> Any:
        spec = pb.MetricSpec(metricName=METRIC, targetSize=1, targetSizeFloat=1.0)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(self, request: Any, context: Any) -> Any:
        work = self._work(request.scaledObjectRef)
        value = pb.MetricValue(
            metricName=request.metricName or METRIC,
            metricValue=work,
            metricValueFloat=float(work),
        )
        return pb.GetMetricsResponse(metricValues=[value])


async def serve(
    scaler: PushScaler, host: str, port: int, tls_dir: str | None = None
) -> grpc.aio.Server:
    """Start the gRPC server, with TLS when tls_dir is given.

    Raises OSError-like errors if the port is taken, and ValueError naming the
    file when tls_dir does not hold a usable certificate and key.
    """
    # Without SO_REUSEPORT (on by default in gRPC) a second operator on the same
    # port fails to start instead of silently sharing KEDA's streams.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((_service(scaler),))
    address = f"{host}:{port}"
    if tls_dir is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls_credentials(Path(tls_dir)))
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    log.info("external-push scaler listening on %s (%s)", address, "TLS" if tls_dir else "plain")
    return server


def _service(scaler: PushScaler) -> grpc.GenericRpcHandler:
    """KEDA's ExternalScaler service, with the methods the operator implements.

    StreamMetricSpec is left out: the metric spec never changes, and KEDA falls
    back to GetMetricSpec on UNIMPLEMENTED (and only on that code), as its proto says.
    """
    ref = pb.ScaledObjectRef.FromString

    def encode(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    methods = {
        "IsActive": grpc.unary_unary_rpc_method_handler(scaler.IsActive, ref, encode),
        "StreamIsActive": grpc.unary_stream_rpc_method_handler(scaler.StreamIsActive, ref, encode),
        "GetMetricSpec": grpc.unary_unary_rpc_method_handler(scaler.GetMetricSpec, ref, encode),
        "GetMetrics": grpc.unary_unary_rpc_method_handler(
            scaler.GetMetrics, pb.GetMetricsRequest.FromString, encode
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def tls_credentials(directory: Path) -> grpc.ServerCredentials:
    """TLS from tls.crt and tls.key in directory, read again at each new connection.

    A renewed certificate (cert-manager rewrites the mounted Secret in place) is
    served from the next connection on, with no restart; a half-written or broken
    pair is logged and the last good one kept. The first pair must be good.
    """
    current = _read_pair(directory)

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        nonlocal current
        try:
            pair = _read_pair(directory)
        except (OSError, ValueError) as exc:
            log.warning("push TLS: keeping the current certificate: %s", exc)
            return None
        if pair == current:
            return None
        current = pair
        log.info("push TLS: serving the renewed certificate from %s", directory)
        return _configuration(pair)

    return grpc.dynamic_ssl_server_credentials(_configuration(current), fetch)


def _read_pair(directory: Path) -> tuple[bytes, bytes]:
    """(key, certificate chain) as PEM, checked to belong together."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    try:
        chain = cert.read_bytes()
        pair = key.read_bytes(), chain
        # The same check a TLS server makes, before a client finds out the hard way.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(f"{cert} and {key} are not a PEM certificate and its key: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {exc.filename or directory}: {exc.strerror}") from None
    return pair


def _configuration(pair: tuple[bytes, bytes]) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([pair])
