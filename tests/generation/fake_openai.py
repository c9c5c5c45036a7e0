"""A small OpenAI-compatible HTTP server for tests (``/v1/chat/completions`` and ``/v1/completions``).

Deterministic: for a prompt that names one of ``teach.GOOD_TOPICS`` it answers that topic's shipped conversation as a
transcript; for ``teach.BAD_TOPICS`` it answers HTTP 500 (so the client's retries run out); otherwise a
fixed non-transcript text. It requires ``Authorization: Bearer <key>`` and records every request body.
"""

from __future__ import annotations

from typing import Any

from tests.local_openai import LocalOpenAIServer


class FakeOpenAI(LocalOpenAIServer):
    """Runs the aiohttp app on 127.0.0.1 in a background thread; ``url`` is its ``/v1`` base URL."""

    def __init__(self, key: str, answers: dict[str, str], failing: tuple[str, ...]) -> None:
        super().__init__()
        self.key, self.answers, self.failing = key, answers, failing

    def _answer(self, text: str) -> tuple[int, str]:
        for name in self.failing:
            if name in text:
                return 500, ""
        for name, answer in self.answers.items():
            if name in text:
                return 200, answer
        return 200, "نص عشوائي بلا أدوار"

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        chat = request.path.endswith("/chat/completions")
        text = "\n".join(m["content"] for m in body["messages"]) if chat else body["prompt"]
        status, answer = self._answer(text)
        if status != 200:
            return web.json_response({"error": {"message": "boom"}}, status=status)
        choice = {
            "index": 0,
            "finish_reason": "stop",
            **({"message": {"role": "assistant", "content": answer}} if chat else {"text": answer}),
        }
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": len(answer.split())}
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage})
