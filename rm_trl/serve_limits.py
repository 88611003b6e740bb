"""Transport limits of the reward server: how much a client may send, and how long it may hold a connection.

- `RequestGuard` (ASGI middleware) reads each request body before the app sees it: it streams the body and answers
  413 as soon as `max_body_bytes` is passed (chunked bodies announce no length, so the declared length is not
  enough), 408 when the body is not complete within `body_timeout_s` (a client sending one byte a second would
  otherwise hold its connection and its memory for as long as it likes), and logs one line, not a traceback, when a
  client goes away mid-body.
- `deadline_protocol` is uvicorn's HTTP protocol with one addition: a connection that has not sent a complete
  request head `timeout_s` after connecting (or after its last answer) is closed. uvicorn arms its keep-alive timer
  only after an answer and cancels it on any byte received, so an idle connection, or one that sends its head a
  byte at a time, would keep a `limit_concurrency` slot forever, and enough of them would make every request a 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger("rm_trl.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


async def reply_and_close(send: Send, status: int, message: str) -> None:
    """A JSON error answer with `Connection: close`: the unread rest of the body is never read."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RequestGuard:
    """ASGI middleware: the whole body, at most `max_body_bytes`, within `body_timeout_s`, or an early answer."""

    def __init__(self, app: Callable, max_body_bytes: int, body_timeout_s: float):
        self.app, self.max_body_bytes, self.body_timeout_s = app, max_body_bytes, body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await reply_and_close(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.body_timeout_s)
        except asyncio.TimeoutError:
            await reply_and_close(send, 408, f"request body not received within {self.body_timeout_s:g} s")
            return
        except _TooLarge:
            await reply_and_close(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        except _ClientGone:
            client = scope.get("client") or ("?", "?")
            logger.warning("client %s:%s disconnected before sending its whole request; nothing scored", *client)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: a disconnect, if the client goes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def deadline_protocol(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, closing connections that send no complete request head within `timeout_s`."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class DeadlineHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._waiting_since = self.loop.time()
            self._watch = self.loop.call_later(timeout_s, self._check)

        def on_response_complete(self) -> None:
            self._waiting_since = self.loop.time()  # now waiting for the next request head
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._watch.cancel()
            super().connection_lost(exc)

        def _check(self) -> None:
            if self.transport.is_closing():
                return
            waiting = self.cycle is None or self.cycle.response_complete  # no request in progress
            idle = self.loop.time() - self._waiting_since
            if waiting and idle >= timeout_s:
                try:
                    self.timeout_keep_alive_handler()  # uvicorn's own way to close an idle connection
                except Exception:  # a protocol state that refuses a clean close: close anyway
                    self.transport.close()
                return
            self._watch = self.loop.call_later(timeout_s - idle if waiting else timeout_s, self._check)

    return DeadlineHTTPProtocol
