"""An OpenAI-compatible test server on 127.0.0.1 that answers each request from a script.

The script maps a request's ``seed`` (every grid row has its own) to a :class:`Reply`. Requests may run
concurrently and be retried, so the answer is chosen by what the request carries, never by arrival order. A seed
that is not in the script gets ``default``. Every request body is recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.local_openai import LocalOpenAIServer

NO_BODY = object()


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status and a body (any JSON value, or raw bytes sent as they are)."""

    status: int = 200
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is NO_BODY else json.dumps(self.body, ensure_ascii=False).encode()


def chat_body(text: Any, prompt_tokens: int = 12, completion_tokens: int = 50) -> dict[str, Any]:
    """A well-formed ``/chat/completions`` answer carrying ``text``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ScriptedOpenAI(LocalOpenAIServer):
    """Serves ``/v1/chat/completions`` and ``/v1/completions`` in a background thread; ``url`` is the base."""

    def __init__(self, script: dict[int, Reply], default: Reply | None = None) -> None:
        super().__init__()
        self.script = script
        self.default = default or Reply(404, {"error": {"message": "no scripted answer"}})

    def tries(self, seed: int) -> int:
        """How many requests carried ``seed``."""
        return sum(1 for r in self.requests if r.get("seed") == seed)

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self.requests.append(body)
        reply = self.script.get(body.get("seed"), self.default)
        return web.Response(status=reply.status, body=reply.encoded(), content_type=reply.content_type)
