"""Real servers for the end-to-end tests, on loopback and free ports only.

- `ServiceProcess`: the WebSocketManager service itself (the repository's `src/main.ts` on
  the repository's Node), started on port 0; the port comes from its "listening" log line.
- `EchoServer`: a local WebSocket server in a thread of its own, whose behaviour depends on
  the request path: `/echo` returns every frame as it came, `/silent` never answers,
  `/closer` echoes but closes the connection (code 1001) when it receives the text `close`,
  and `/inspect` answers a JSON object with `"inspect": true` with that object plus what it
  saw: the X-Api-Key request header, the negotiated subprotocol and the frames before it.
  It accepts the subprotocol `wsm.v2` when offered.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

REPO_ROOT = Path(__file__).resolve().parents[3]
SUBPROTOCOL = Subprotocol("wsm.v2")
STARTUP_TIMEOUT_S = 60.0


class ServiceProcess:
    """The WebSocketManager service, started as `node src/main.ts --port 0`."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        node = REPO_ROOT / "node_modules" / ".bin" / "node"
        main = REPO_ROOT / "src" / "main.ts"
        for path in (node, main):
            if not path.exists():
                raise RuntimeError(f"{path} is missing: install the project first (scripts/bootstrap.sh)")
        # The test decides every setting: none leaks in from the caller's environment, and
        # no Dapr sidecar is used (the in-process publisher feeds Subscribe).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WSM_", "DAPR_"))}
        self.log: list[str] = []
        self._listening = threading.Event()
        self.port = 0
        self.instance_id = ""
        self.process = subprocess.Popen(
            [str(node), str(main), "--port", "0", "--host", "127.0.0.1", *extra_args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The log is read to its end in a thread so that the service never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read_log, name="wsm-log", daemon=True)
        self._reader.start()
        if not self._listening.wait(STARTUP_TIMEOUT_S) or not self.port:
            self.stop()
            raise RuntimeError("the service did not report listening:\n" + "\n".join(self.log[-50:]))

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line.rstrip("\n"))
            if self._listening.is_set():
                continue
            try:
                record: Any = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("msg") == "listening":
                self.port = int(record["port"])
                self.instance_id = str(record.get("instance_id", ""))
                self._listening.set()
        self._listening.set()  # the process ended: let a waiting start-up fail at once

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


class EchoServer:
    """A local WebSocket server (see the module docstring) on a free loopback port."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="echo-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the echo server did not start: {self._error!r}")

    def url(self, path: str = "/echo") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to the constructor
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, select_subprotocol=_select_subprotocol) as server:
            self.port = int(next(iter(server.sockets)).getsockname()[1])
            self._ready.set()
            await self._stop.wait()

    @staticmethod
    async def _handle(connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else "/echo"
        received: list[str | bytes] = []
        async for frame in connection:
            if path == "/silent":
                continue
            if path == "/inspect":
                await _inspect(connection, frame, received)
                continue
            if path == "/closer" and frame == "close":
                await connection.close(1001, "asked to close")
                return
            await connection.send(frame)

    def stop(self) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


async def _inspect(connection: ServerConnection, frame: str | bytes, received: list[str | bytes]) -> None:
    try:
        request: Any = json.loads(frame)
    except ValueError:
        request = None
    if not (isinstance(request, dict) and request.get("inspect") is True):
        received.append(frame)
        return
    headers = connection.request.headers if connection.request else {}
    reply = {
        **request,
        "api_key": headers.get("X-Api-Key"),
        "protocol": connection.subprotocol,
        "received": [f if isinstance(f, str) else f.hex() for f in received],
    }
    await connection.send(json.dumps(reply))
