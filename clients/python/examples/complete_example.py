#!/usr/bin/env python3
"""Example: WebSocket management with the Python client."""

# The manual's Complete Example. Only where the service and the WebSocket server are can be
# set from the environment (WSM_HOST, WSM_PORT, ECHO_URL), with the manual's values by default.

import asyncio
import os

from virtufin.websocketmanager import WebSocketManagerClient

WSM_HOST = os.environ.get("WSM_HOST", "localhost")
WSM_PORT = int(os.environ.get("WSM_PORT", "5002"))
ECHO_URL = os.environ.get("ECHO_URL", "wss://echo.websocket.org")


async def main():
    async with WebSocketManagerClient(WSM_HOST, WSM_PORT) as client:
        # Connect
        print("Connecting to WebSocket server...")
        connect_resp = await client.connect(
            ECHO_URL,
            auto_reconnect=False
        )
        print(f"Connected: {connect_resp.id} - {connect_resp.status}")

        # List connections
        print("\nAll connections:")
        list_resp = await client.list()
        for conn in list_resp.connections:
            print(f"  {conn.id}: {conn.url} [{conn.status}]")
            if conn.topic:
                print(f"    Publishing to: {conn.topic}")

        # Send a message
        print("\nSending message...")
        send_resp = await client.send(
            connect_resp.id,
            '{"type": "request", "id": "123", "data": "hello"}',
            timeout_ms=5000
        )
        print(f"Response: {send_resp.response}")

        # Start pub/sub
        print("\nStarting pub/sub...")
        await client.start_publish(connect_resp.id, "ws-events")
        print("Publishing started")

        # Stop pub/sub
        print("\nStopping pub/sub...")
        await client.stop_publish(connect_resp.id)
        print("Publishing stopped")

        # Disconnect
        print("\nDisconnecting...")
        await client.disconnect(connect_resp.id)
        print("Disconnected")


if __name__ == "__main__":
    asyncio.run(main())
