"""The machinery every OpenAI-compatible test server shares: an aiohttp app on 127.0.0.1 (a free port) in a
background thread, started and stopped as a context manager. Subclasses answer requests in ``_handle``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

PATHS = ("/v1/chat/completions", "/v1/completions")


class LocalOpenAIServer:
    """Serves ``PATHS`` with ``self._handle`` on 127.0.0.1; ``url`` is the ``/v1`` base URL, ``requests`` every body."""

    paths: tuple[str, ...] = PATHS

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: Any) -> Any:
        raise NotImplementedError

    def _serve(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application()
        for path in self.paths:
            app.router.add_post(path, self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
