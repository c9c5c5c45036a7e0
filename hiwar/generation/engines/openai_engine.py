"""The ``openai`` engine: any OpenAI-compatible server (``vllm serve``, Ray Serve LLM, a hosted API).

Requests go through Ray Data LLM's ``HttpRequestProcessorConfig``: ``/chat/completions`` for ``messages``
rows, ``/completions`` for ``prompt`` rows, with the row's seed. The API key is read from the environment
variable ``api_key_env`` on the driver and travels inside :class:`SafeSessionFactory` as a pydantic
``SecretStr``: it is never part of the processor config, a row, an output or a log line.

:class:`SafeSession` owns every HTTP exchange: it retries connection errors and 429/5xx answers itself, and
:func:`shape_answer` turns whatever finally came back into hiwar's four output columns, of the same types in
every row: the text and token counts of a well-formed answer, or an ``error`` that gives the reason and the
raw body (clipped). Ray's stage therefore never sees a failed request (which would stop the job), a body that
is not a JSON object (it raises on one), or answers of different shapes. Different shapes are the danger:
Ray's Arrow blocks hold the answers as structs, and when it concatenates batches whose structs differ it
rebuilds nested structs without their null masks, so a success row's ``"error": null`` came back as
``{"message": ""}`` and its text was lost (issue 16).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pydantic import SecretStr

from hiwar.errors import ConfigError, describe_error
from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.common import engine_fields, plain, with_outputs

RETRYABLE = {408, 429, 500, 502, 503, 504}
MAX_BODY_CHARS = 1000  # of a raw body kept in an error row
MAX_TOKENS_COUNT = 2**62  # a token count above this is not a count (and would overflow Arrow's int64)


class AnswerShapeError(ValueError):
    """A 2xx body that is not a completion hiwar can read."""


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def clip(raw: str, limit: int = MAX_BODY_CHARS) -> str:
    """``raw`` cut to ``limit`` characters, saying how much was cut."""
    return raw if len(raw) <= limit else f"{raw[:limit]}... [{len(raw) - limit} more chars]"


def failed(reason: str, raw: str = "") -> dict[str, Any]:
    """An error answer: no text, no tokens, the reason and the raw body."""
    raw = raw.strip()
    return {
        "generated_text": "",
        "num_prompt_tokens": 0,
        "num_generated_tokens": 0,
        "error": f"{reason}: {clip(raw)}" if raw else f"{reason} (empty body)",
    }


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS_COUNT:
        raise AnswerShapeError(f"usage.{key} is {json.dumps(value)[:40]}, not a token count")
    return value


def read_completion(body: Any) -> tuple[str, int, int]:
    """(text, prompt tokens, generated tokens) of a chat or text completion body.

    Raises:
        AnswerShapeError: anything else (an error object, missing or odd choices, a text that is not a string,
            usage that is not an object of counts).
    """
    if not isinstance(body, dict):
        raise AnswerShapeError(f"the body is a JSON {_kind(body)}, not an object")
    if body.get("error") is not None:
        raise AnswerShapeError("the server answered an error")
    choices = body.get("choices")
    if choices is None or choices == []:
        raise AnswerShapeError("no choices")
    if not isinstance(choices, list):
        raise AnswerShapeError(f"choices is a JSON {_kind(choices)}, not a list")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise AnswerShapeError(f"choices[0] is a JSON {_kind(choice)}, not an object")
    if "message" in choice:
        message = choice["message"]
        if not isinstance(message, dict):
            raise AnswerShapeError(f"the message is a JSON {_kind(message)}, not an object")
        text, where = message.get("content"), "message.content"
    elif "text" in choice:
        text, where = choice["text"], "text"
    else:
        raise AnswerShapeError("choices[0] has neither a message nor a text")
    if not isinstance(text, str):
        raise AnswerShapeError(f"{where} is a JSON {_kind(text)}, not a string")
    usage = body.get("usage")
    if usage is None:
        return text, 0, 0
    if not isinstance(usage, dict):
        raise AnswerShapeError(f"usage is a JSON {_kind(usage)}, not an object")
    return text, _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")


def shape_answer(status: int, reason: str, raw: bytes | str) -> dict[str, Any]:
    """What the server answered, as hiwar's four output columns: the one place that decides it.

    A 2xx JSON completion gives its text and token counts; anything else (an HTTP error, a body that is not
    JSON, a JSON body of another shape) gives an error that names the reason and keeps the raw body (clipped).
    Never raises.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    if not 200 <= status < 300:
        return failed(f"HTTP {status} {reason}".rstrip(), text)
    try:
        body = json.loads(text)
    except ValueError:
        return failed(f"HTTP {status}: not a JSON answer", text)
    try:
        out, n_prompt, n_gen = read_completion(body)
    except AnswerShapeError as err:
        return failed(f"unexpected answer ({err})", text)
    return {"generated_text": out, "num_prompt_tokens": n_prompt, "num_generated_tokens": n_gen, "error": ""}


class _Answer:
    """A stand-in response carrying a shaped answer (what Ray's stage reads: status, reason, json())."""

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
    """Wraps an ``aiohttp.ClientSession``: adds the key, retries, never raises for one request, and hands Ray
    every answer through :func:`shape_answer`."""

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
        reason, raw = "", ""
        tries = self._retries + 1
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(min(2**attempt * 0.25, 8.0))
            try:
                async with self._session.post(url, headers=headers, data=data) as resp:
                    body = await resp.read()
                    if resp.status in RETRYABLE:
                        reason, raw = f"HTTP {resp.status} {resp.reason or ''}".rstrip(), body.decode(errors="replace")
                        continue
                    return self._answer(shape_answer(resp.status, resp.reason or "", body))
            except Exception as err:  # noqa: BLE001 - connection errors, timeouts
                reason, raw = f"request failed: {describe_error(err)}", ""
        return self._answer(failed(f"{reason} (after {tries} tries)", raw))

    def _answer(self, shaped: dict[str, Any]) -> _Answer:
        """The shaped answer, with the key blanked out of an error (a server may echo the request headers)."""
        if self._key is not None and self._key.get_secret_value() in shaped["error"]:
            shaped["error"] = shaped["error"].replace(self._key.get_secret_value(), "***")
        return _Answer(shaped)


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


def response_format(row: dict[str, Any]) -> dict[str, Any]:
    """The structured output a row asks for: its ``json_schema`` (JSON text, as the vllm engine takes it) under
    ``json_schema_name``, strict, in the OpenAI ``response_format`` shape."""
    schema = {"name": str(row.get("json_schema_name") or "output"), "schema": json.loads(row["json_schema"])}
    return {"type": "json_schema", "json_schema": {**schema, "strict": True}}


class OpenAIPreprocess:
    """Row -> ``payload`` for the server (chat for ``messages`` rows, completion for ``prompt`` rows; a
    ``response_format`` for rows that carry a ``json_schema``, the judge's)."""

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
        if row.get("json_schema"):  # explicit engine_kwargs (one response_format for every row) win
            payload["response_format"] = response_format(row)
        payload.update(self.cfg.engine_kwargs)
        if self.chat:
            payload["messages"] = plain(row["messages"])
        else:
            payload["prompt"] = str(row["prompt"])
        return {"payload": payload, "__hiwar_input": plain(dict(row))}


def finalize_answer(row: dict[str, Any]) -> dict[str, Any]:
    """The processor's row -> input columns plus hiwar's four output columns (already shaped by the session)."""
    answer = plain(row.get("http_response"))
    if not isinstance(answer, dict) or not all(key in answer for key in ("generated_text", "error")):
        answer = failed("no answer was recorded for this row", json.dumps(answer, default=str))
    return with_outputs(
        plain(row["__hiwar_input"]),
        str(answer.get("generated_text") or ""),
        int(answer.get("num_prompt_tokens") or 0),
        int(answer.get("num_generated_tokens") or 0),
        str(answer.get("error") or ""),
    )


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

    check_openai(cfg)
    chat = "prompt" not in ds.schema().names
    key = os.environ.get(cfg.api_key_env)
    processor_cfg = HttpRequestProcessorConfig(
        url=cfg.base_url.rstrip("/") + ("/chat/completions" if chat else "/completions"),
        batch_size=cfg.batch_size,
        concurrency=cfg.actors,
        session_factory=SafeSessionFactory(SecretStr(key) if key else None, cfg.request_timeout_s, cfg.max_retries),
        max_retries=0,  # SafeSession retries itself and never lets a request fail the batch
    )
    processor = build_processor(processor_cfg, preprocess=OpenAIPreprocess(engine_fields(cfg), chat))
    return processor(ds).map(finalize_answer)
