"""The manual's examples, run as scripts against the real service and a local echo server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from local_servers import EchoServer, ServiceProcess
from virtufin.websocketmanager import WebSocketManagerClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run_example(name: str, wsm: ServiceProcess, **env: str) -> list[str]:
    """Runs examples/<name> with the service's address; returns its output lines."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, "WSM_HOST": "127.0.0.1", "WSM_PORT": str(wsm.port), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stderr == "", result.stderr
    return result.stdout.splitlines()


async def connection_ids(wsm: ServiceProcess) -> set[str]:
    async with WebSocketManagerClient("127.0.0.1", wsm.port) as client:
        return {connection.id for connection in (await client.list()).connections}


async def test_quick_start(wsm: ServiceProcess, echo: EchoServer) -> None:
    url = echo.url()
    lines = run_example("quick_start.py", wsm, ECHO_URL=url)

    connected = re.fullmatch(rf"Connected: ({UUID}) - connected", lines[0])
    assert connected, lines
    connection_id = connected.group(1)
    # The list holds every connection of the service; this one is listed as connected.
    listed = [line for line in lines[1:-1] if re.fullmatch(rf"  {UUID}: \S+ \[\w+\]", line)]
    assert len(listed) == len(lines) - 2, lines
    assert f"  {connection_id}: {url} [connected]" in listed
    response = re.fullmatch(r"Response: (.*)", lines[-1])
    assert response, lines
    reply = json.loads(response.group(1))
    # The echo of '{"type": "ping"}' with the correlation id the service added.
    assert reply["type"] == "ping"
    assert set(reply) == {"type", "id"}
    assert connection_id not in await connection_ids(wsm)


async def test_complete_example(wsm: ServiceProcess, echo: EchoServer) -> None:
    url = echo.url()
    lines = run_example("complete_example.py", wsm, ECHO_URL=url)

    assert lines[0] == "Connecting to WebSocket server..."
    connected = re.fullmatch(rf"Connected: ({UUID}) - connected", lines[1])
    assert connected, lines
    connection_id = connected.group(1)
    assert lines[2:4] == ["", "All connections:"]
    sending = lines.index("Sending message...")
    listing = lines[4 : sending - 1]
    assert f"  {connection_id}: {url} [connected]" in listing
    assert all(re.fullmatch(rf"  {UUID}: \S+ \[\w+\]|    Publishing to: \S+", line) for line in listing), listing
    assert lines[sending - 1] == ""
    response = re.fullmatch(r"Response: (.*)", lines[sending + 1])
    assert response, lines
    assert json.loads(response.group(1)) == {"type": "request", "id": "123", "data": "hello"}
    assert lines[sending + 2 :] == [
        "",
        "Starting pub/sub...",
        "Publishing started",
        "",
        "Stopping pub/sub...",
        "Publishing stopped",
        "",
        "Disconnecting...",
        "Disconnected",
    ]
    assert connection_id not in await connection_ids(wsm)


def free_port() -> int:
    """A loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_error_handling_unreachable_upstream(wsm: ServiceProcess) -> None:
    lines = run_example("error_handling.py", wsm, INVALID_URL=f"ws://127.0.0.1:{free_port()}/")
    assert len(lines) == 1, lines
    assert re.fullmatch(r"gRPC error: StatusCode\.UNAVAILABLE - .+", lines[0]), lines


def test_error_handling_invalid_url(wsm: ServiceProcess) -> None:
    lines = run_example("error_handling.py", wsm, INVALID_URL="http://127.0.0.1/")
    assert len(lines) == 1, lines
    assert re.fullmatch(r"gRPC error: StatusCode\.INVALID_ARGUMENT - .+", lines[0]), lines
