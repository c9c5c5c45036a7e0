"""The ``openai`` engine: any OpenAI-compatible server (``vllm serve``, Ray Serve LLM, a hosted API).

Requests go through Ray Data LLM's ``HttpRequestProcessorConfig``: ``/chat/completions`` for ``messages``
rows, ``/completions`` for ``prompt`` rows, with the row's seed. The API key is read from the environment
variable ``api_key_env`` on the driver and travels inside :class:`SafeSessionFactory` as a pydantic
``SecretStr``: it is never part of the processor config, a row, an output or a log line. Ray's HTTP stage
raises on a request that fails, which would stop the job; :class:`SafeSession` instead retries connection
errors and 429/5xx answers itself and turns what still fails into an ``{"error": ...}`` body, so the row
becomes an error row.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import SecretStr

from hiwar.errors import ConfigError
from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.common import first_line, plain

RETRYABLE = {408, 429, 500, 502, 503, 504}


class _Answer:
    """A stand-in response carrying a JSON body (what Ray's stage reads: status, reason, json())."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.status = 200
        self.reason = "OK"
        self._body = body

    async def json(self, **_: Any) -> dict[str, Any]:
        return self._body

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None


class SafeSession:
    """Wraps an ``aiohttp.ClientSession``: adds the key, retries, and never raises for one request."""

    def __init__(self, api_key: SecretStr | None, timeout_s: float, retries: int) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        self._key = api_key
        self._retries = retries

    async def __aenter__(self) -> SafeSession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.close()

    def post(self, url: str, headers: dict[str, str] | None = None, data: Any = None) -> Any:
        headers = dict(headers or {})
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        return self._post(url, headers, data)

    async def _post(self, url: str, headers: dict[str, str], data: Any) -> _Answer:
        last = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(min(2**attempt * 0.25, 8.0))
            try:
                async with self._session.post(url, headers=headers, data=data) as resp:
                    if resp.status in RETRYABLE:
                        last = f"HTTP {resp.status} {resp.reason}"
                        continue
                    try:
                        body = await resp.json(content_type=None)
                    except Exception:  # noqa: BLE001 - a non-JSON answer is an error row
                        body = {"error": {"message": f"HTTP {resp.status}: not a JSON answer"}}
                    if resp.status >= 400 and "error" not in body:
                        body = {"error": {"message": f"HTTP {resp.status} {resp.reason}"}}
                    return _Answer(body if body else {"error": {"message": "empty answer"}})
            except Exception as err:  # noqa: BLE001 - connection errors, timeouts
                last = first_line(err)
        return _Answer({"error": {"message": f"request failed after {self._retries + 1} tries: {last}"}})


class SafeSessionFactory:
    """Picklable session factory for Ray's HTTP stage; its repr hides the key."""

    def __init__(self, api_key: SecretStr | None, timeout_s: float, retries: int) -> None:
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries

    def __call__(self) -> SafeSession:
        return SafeSession(self.api_key, self.timeout_s, self.retries)

    def __repr__(self) -> str:
        return f"SafeSessionFactory(api_key={'set' if self.api_key else 'none'}, retries={self.retries})"


class OpenAIPreprocess:
    """Row -> ``payload`` for the server (chat for ``messages`` rows, completion for ``prompt`` rows)."""

    def __init__(self, cfg: dict[str, Any], chat: bool) -> None:
        self.cfg = EngineConfig.model_validate(cfg)
        self.chat = chat

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        s = self.cfg.sampling
        payload: dict[str, Any] = {
            "model": self.cfg.model,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "seed": int(row["seed"]),
        }
        if s.temperature > 0:
            payload["top_p"] = s.top_p
        # vLLM's server extensions; hosted APIs that reject them: set top_k -1 and repetition_penalty 1.
        if s.top_k > 0:
            payload["top_k"] = s.top_k
        if s.repetition_penalty != 1.0:
            payload["repetition_penalty"] = s.repetition_penalty
        payload.update(self.cfg.engine_kwargs)
        if self.chat:
            payload["messages"] = plain(row["messages"])
        else:
            payload["prompt"] = str(row["prompt"])
        return {"payload": payload, "__hiwar_input": plain(dict(row))}


def finalize_answer(row: dict[str, Any]) -> dict[str, Any]:
    """The server's answer -> input columns plus hiwar's four output columns."""
    out = dict(plain(row["__hiwar_input"]))
    answer = plain(row.get("http_response")) or {}
    text, error = "", ""
    if answer.get("error"):
        err = answer["error"]
        error = str(err.get("message", err) if isinstance(err, dict) else err)
    else:
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"] if "message" in choice else choice["text"]
        except (KeyError, IndexError, TypeError) as exc:
            error = f"unexpected answer shape ({first_line(exc)})"
    usage = answer.get("usage") or {}
    out.update(
        generated_text=str(text or ""),
        num_prompt_tokens=int(usage.get("prompt_tokens") or 0),
        num_generated_tokens=int(usage.get("completion_tokens") or 0),
        error=error,
    )
    return out


def check_openai(cfg: EngineConfig) -> None:
    """The openai engine needs a base URL and a model name.

    Raises:
        ConfigError: one of them is missing.
    """
    if not cfg.base_url:
        raise ConfigError(
            "generation.base_url: the openai engine needs the server's base URL, e.g. http://127.0.0.1:8000/v1"
        )
    if not cfg.model:
        raise ConfigError("generation.model: the openai engine needs the served model name")


def generate_openai(ds: Any, cfg: EngineConfig) -> Any:
    """Send every row to ``cfg.base_url`` through Ray Data LLM's HTTP processor."""
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    from hiwar.generation.engines.hf_engine import engine_fields

    check_openai(cfg)
    chat = "prompt" not in ds.schema().names
    key = os.environ.get(cfg.api_key_env)
    processor_cfg = HttpRequestProcessorConfig(
        url=cfg.base_url.rstrip("/") + ("/chat/completions" if chat else "/completions"),
        batch_size=cfg.batch_size,
        concurrency=cfg.replicas,
        session_factory=SafeSessionFactory(SecretStr(key) if key else None, cfg.request_timeout_s, cfg.max_retries),
        max_retries=0,  # SafeSession retries itself and never lets a request fail the batch
    )
    processor = build_processor(processor_cfg, preprocess=OpenAIPreprocess(engine_fields(cfg), chat))
    return processor(ds).map(finalize_answer)
