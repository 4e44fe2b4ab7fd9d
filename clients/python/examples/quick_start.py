"""The manual's Quick Start.

The code is the manual's; only where the service and the WebSocket server are can be set
from the environment (WSM_HOST, WSM_PORT, ECHO_URL), with the manual's values by default.
"""

import asyncio
import os

from virtufin.websocketmanager import WebSocketManagerClient

WSM_HOST = os.environ.get("WSM_HOST", "localhost")
WSM_PORT = int(os.environ.get("WSM_PORT", "5002"))
ECHO_URL = os.environ.get("ECHO_URL", "wss://echo.websocket.org")


async def main():
    async with WebSocketManagerClient(WSM_HOST, WSM_PORT) as client:
        # Connect to a WebSocket server
        response = await client.connect(ECHO_URL, auto_reconnect=True)
        print(f"Connected: {response.id} - {response.status}")

        # List all connections
        list_resp = await client.list()
        for conn in list_resp.connections:
            print(f"  {conn.id}: {conn.url} [{conn.status}]")

        # Send a message and wait for response
        send_resp = await client.send(response.id, '{"type": "ping"}', timeout_ms=5000)
        print(f"Response: {send_resp.response}")

        # Disconnect
        await client.disconnect(response.id)

asyncio.run(main())
