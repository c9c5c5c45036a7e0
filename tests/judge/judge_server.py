"""A small OpenAI-compatible judge server for tests (``/v1/chat/completions``) on 127.0.0.1.

It answers from a script: ``script(prompt, seen)`` gets the request's last user message and how many times that exact
prompt came before (so a test can answer a malformed judgment first and a good one on the retry). The script helpers
below read score tags that tests write into the judged text (``[[s=5,4,3,2,1]]``), so every expected number can be
computed by hand. Every request body is recorded. With ``refuse_schema`` it answers a request that carries a
``response_format`` as a server without structured output does (HTTP 400 naming it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.local_openai import LocalOpenAIServer

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


class JudgeServer(LocalOpenAIServer):
    """Runs the aiohttp app in a background thread; ``url`` is its ``/v1`` base URL."""

    paths = ("/v1/chat/completions",)

    def __init__(self, script: Callable[[str, int], str], refuse_schema: bool = False) -> None:
        super().__init__()
        self.script = script
        self.refuse_schema = refuse_schema
        self.seen: Counter[str] = Counter()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self.requests.append(body)
        if self.refuse_schema and "response_format" in body:
            error = {"message": "response_format: structured output is not supported", "type": "BadRequestError"}
            return web.json_response({"error": error}, status=400)
        prompt = body["messages"][-1]["content"]
        answer = self.script(prompt, self.seen[prompt])
        self.seen[prompt] += 1
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split())}
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage})
