"""Fixtures shared by the test modules: the real service and a local WebSocket server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest

from local_servers import EchoServer, ServiceProcess
from virtufin.websocketmanager import WebSocketManagerClient


@pytest.fixture(scope="session")
def wsm() -> Iterator[ServiceProcess]:
    """The WebSocketManager service, running for the whole session."""
    process = ServiceProcess()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
async def wsm_client(wsm: ServiceProcess) -> AsyncIterator[WebSocketManagerClient]:
    """A client of the session's service; connections a test leaves open are removed after it."""
    async with WebSocketManagerClient("127.0.0.1", wsm.port, timeout=30) as client:
        before = {connection.id for connection in (await client.list()).connections}
        yield client
        for connection in (await client.list()).connections:
            if connection.id not in before:
                try:
                    await client.disconnect(connection.id)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
