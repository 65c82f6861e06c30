"""PTB's HTTP transport over aiohttp: one ``ClientSession``, one connection pool.

python-telegram-bot's default transport (httpx) spends most of a bare bot's CPU inside its
connection pool; aiohttp does the same work for a fraction of it. PTB accepts any
``telegram.request.BaseRequest``, and ``BaseRequest.post`` turns the status codes this class
returns into PTB's errors (429 → ``RetryAfter``, 403 → ``Forbidden``, 400 → ``BadRequest``,
5xx → ``NetworkError``), so handlers see exactly what they see with httpx. Only transport
failures are mapped here: timeouts → ``TimedOut``, connection errors → ``NetworkError``.

Requests without files go out as one JSON body (the Bot API accepts JSON); uploads go out as
``multipart/form-data``.
"""

from __future__ import annotations

import asyncio

import aiohttp

from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` over a shared ``aiohttp.ClientSession``; defaults mirror ``HTTPXRequest``.

    One instance can serve as both ``request`` and ``get_updates_request`` of an Application:
    ``initialize``/``shutdown`` are idempotent. Long polls get ``read_timeout`` plus the poll's
    own timeout (PTB adds it), so a quiet poll never times out.
    """

    __slots__ = ("_connect", "_media_write", "_pool", "_pool_size", "_read", "_session", "_timeouts", "_write")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ):
        self._pool_size = connection_pool_size
        self._read, self._write, self._connect, self._pool = read_timeout, write_timeout, connect_timeout, pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}  # one per combination of timeouts, built once

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds."""
        return self._read

    async def initialize(self) -> None:
        """Open the session (on the running loop); a no-op when it is open."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets no cookies
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
            )

    async def shutdown(self) -> None:
        """Close the session and its connections; a no-op when already closed."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request; returns (status, body) and leaves status handling to PTB."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        write = (self._media_write if files else self._write) if isinstance(write_timeout, DefaultValue) else write_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        timeout = self._timeouts.get((read, write, connect, pool))
        if timeout is None:
            timeout = self._timeout(read, write, connect, pool)
        if request_data is None:
            body, headers = None, None
        elif files:
            body, headers = _form(request_data), None
        else:
            body, headers = request_data.json_payload, _JSON
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc


    def _timeout(self, read: float | None, write: float | None, connect: float | None, pool: float | None) -> aiohttp.ClientTimeout:
        # aiohttp has no write timeout: the whole exchange is bounded by the sum of the phases,
        # and a peer that goes silent while answering by ``read`` (sock_read).
        phases = (read, write, connect, pool)
        timeout = aiohttp.ClientTimeout(
            total=None if None in phases else sum(phases),  # type: ignore[arg-type]
            connect=None if connect is None or pool is None else connect + pool,  # pool wait + connecting
            sock_connect=connect,
            sock_read=read,
        )
        if len(self._timeouts) >= 64:  # callers may pass their own timeouts: stay bounded
            self._timeouts.clear()
        self._timeouts[phases] = timeout
        return timeout


def _form(request_data: RequestData) -> aiohttp.FormData:
    """The parameters and files of an upload as multipart form data."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
