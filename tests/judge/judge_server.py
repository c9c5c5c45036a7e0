"""A small OpenAI-compatible judge server for tests (``/v1/chat/completions``) on 127.0.0.1.

It answers from a script: ``script(prompt, seen)`` gets the request's last user message and how many times that exact
prompt came before (so a test can answer a malformed judgment first and a good one on the retry). The script helpers
below read score tags that tests write into the judged text (``[[s=5,4,3,2,1]]``), so every expected number can be
computed by hand. Every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

CRITERIA = ("fluency", "coherence", "relevance", "cultural_appropriateness", "overall_quality")
TAG = re.compile(r"\[\[s=([0-9,]+)\]\]")


def judgment(scores: list[int] | tuple[int, ...], names: tuple[str, ...] = CRITERIA) -> str:
    """A well-formed pointwise judgment with ``scores`` in criterion order."""
    return json.dumps(
        {n: {"rationale": f"تعليل {n}", "score": s} for n, s in zip(names, scores, strict=True)}, ensure_ascii=False
    )


def tagged_scores(text: str, section: str | None = None) -> list[int] | None:
    """The scores of the last ``[[s=...]]`` tag in ``text`` (or in its part after ``section``)."""
    if section is not None:
        text = text.split(section, 1)[-1]
    found = TAG.findall(text)
    return [int(x) for x in found[-1].split(",")] if found else None


class JudgeServer:
    """Runs the aiohttp app in a background thread; ``url`` is its ``/v1`` base URL."""

    def __init__(self, script: Callable[[str, int], str]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self.requests.append(body)
        prompt = body["messages"][-1]["content"]
        answer = self.script(prompt, self.seen[prompt])
        self.seen[prompt] += 1
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split())}
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage})

    def _serve(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
