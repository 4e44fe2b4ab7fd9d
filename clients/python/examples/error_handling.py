"""The manual's Error Handling example, as a script.

The manual connects to "wss://invalid-host"; INVALID_URL replaces it (and WSM_HOST, WSM_PORT
say where the service is), with the manual's values by default.
"""

import asyncio
import os

import grpc

from virtufin.websocketmanager import WebSocketManagerClient

WSM_HOST = os.environ.get("WSM_HOST", "localhost")
WSM_PORT = int(os.environ.get("WSM_PORT", "5002"))
INVALID_URL = os.environ.get("INVALID_URL", "wss://invalid-host")


async def main():
    async with WebSocketManagerClient(WSM_HOST, WSM_PORT) as client:
        try:
            await client.connect(INVALID_URL)
        except grpc.aio.AioRpcError as e:
            print(f"gRPC error: {e.code()} - {e.details()}")


if __name__ == "__main__":
    asyncio.run(main())
