"""The result of WebSocketManagerClient.subscribe: a stream of events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

import grpc.aio

from ._proto import websocketmanager_pb2 as pb


class Subscription:
    """An async iterator over the ``SubscribeResponse`` events of one Subscribe call.

    Iteration ends when the service ends the stream, after :meth:`cancel` and when the client
    is closed; a stream that fails raises its ``grpc.aio.AioRpcError``. Leaving ``async with``
    cancels the call.
    """

    def __init__(self, call: Any, client_closed: Callable[[], bool] = lambda: False) -> None:
        self._call = call
        self._client_closed = client_closed
        self._cancelled = False

    @property
    def call(self) -> Any:
        """The underlying ``grpc.aio.UnaryStreamCall`` (metadata, status, ...)."""
        return self._call

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> pb.SubscribeResponse:
        if self._cancelled:
            raise StopAsyncIteration
        try:
            event = await self._call.read()
        except asyncio.CancelledError:
            # grpc.aio reports a call cancelled locally (cancel(), or the channel closed) as
            # CancelledError in the reader: for the reader that is the end of the stream. A
            # cancellation of the reading task itself must propagate.
            if (self._cancelled or self._client_closed()) and not _task_cancelling():
                raise StopAsyncIteration from None
            raise
        if event is grpc.aio.EOF:
            raise StopAsyncIteration
        return cast(pb.SubscribeResponse, event)

    def cancel(self) -> bool:
        """Cancels the stream; returns False when it had already ended."""
        self._cancelled = True
        return bool(self._call.cancel())

    async def aclose(self) -> None:
        """Cancels the stream (as an async generator's ``aclose``)."""
        self.cancel()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


def _task_cancelling() -> bool:
    """Whether the current task has been asked to cancel.

    Python 3.10 cannot tell (Task.cancelling() is new in 3.11); there a task cancelled at the
    very moment its subscription was cancelled or its client closed sees the stream end instead.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and bool(cancelling() > 0)
