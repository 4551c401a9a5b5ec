"""Limits on everything the API takes: body size, text length, integer and time ranges.

Bad input is the client's error and gets a 4xx naming what is wrong; it must never reach
the database as a value it cannot hold (that was a 500). The body limit is an ASGI
middleware, so an oversized body is refused before it is read into memory, whether it
announces its length or streams in chunks.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator
from sqlalchemy.exc import DataError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import wire

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # the largest legitimate body (a ticket note) is 4,000 characters
INT64_MAX = 2**63 - 1


def _storable(value: str) -> str:
    """Text both databases store: PostgreSQL refuses NUL, and a lone surrogate is not UTF-8."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]

# Types for route parameters.
Id = Annotated[int, Path(ge=1, le=INT64_MAX, description="a row id")]
IdQuery = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
Name = Annotated[Text | None, Query(max_length=128)]
DeviceKey = Annotated[Text, Path(max_length=64)]  # a site or device id in a path
ShortText = 128  # site, device, model, version, root cause: as the store's columns
LongText = 4000  # notes and reasons
Time = wire.WireTime  # with a UTC offset, within the range a datetime holds in UTC


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            # Over the limit: answer 413 now and tell the app the client left, so that it
            # stops reading (FastAPI would turn an exception here into a 400).
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started and not refused:
                        refused = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the app's own answer to a body it never got
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over the limit of {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def invalid_input(exc: RequestValidationError) -> Response:
    """A 422 naming where and why. FastAPI's own handler echoes each input back: a lone
    surrogate cannot be encoded (a 500), and a 60 KB string would come back whole."""
    problems = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    body = json.dumps({"detail": problems}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


def install(app: FastAPI) -> None:
    """The body limit, and a last line for a value the database refuses: a 422, never a
    500 (the limits above should already have caught it; it is logged as a gap in them)."""
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return invalid_input(exc)

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        log.warning("%s %s: database refused a value: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "a value is out of the range the database holds"},
            status_code=422,
        )


def text(limit: int, **extra: Any) -> Any:
    """A query string of at most `limit` characters."""
    return Query(max_length=limit, **extra)
