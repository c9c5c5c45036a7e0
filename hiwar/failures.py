"""One readable line for an exception, including one that crossed Ray (which wraps it, often several times).

Used wherever a failure becomes a report field or a CLI line: evaluation's per-metric status, training's and
generation's "job failed" errors.
"""

from __future__ import annotations

import re

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
    return f"{type(chain[-1]).__name__}: {first_line(chain[-1])}"
