"""Failures as one line: Ray's wrappers peeled off down to the real problem."""

from __future__ import annotations

from hiwar.errors import describe_error, first_line


def test_ray_wrapped_errors_are_reduced_to_their_cause() -> None:
    remote = RuntimeError(
        "ray::MapWorker(MapBatches(PerplexityScorer)).__init__() (pid=1)\nTraceback:\n"
        "  File x\nsafetensors.SafetensorError: Error while deserializing header: header too large"
    )
    wrapper = Exception("SystemException")
    wrapper.__cause__ = remote
    assert describe_error(wrapper) == "SafetensorError: Error while deserializing header: header too large"
    assert describe_error(ValueError("plain\nsecond line")) == "ValueError: plain"


def test_first_line_skips_blank_lines_and_shortens() -> None:
    assert first_line("\n\n  real problem  \nmore") == "real problem"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line("x" * 400, limit=10) == "xxxxxxx..."


def test_describe_error_of_an_empty_message_is_its_type_alone() -> None:
    # The engines' error column and the CLI both use this: an empty message must not repeat the type.
    assert describe_error(ValueError("")) == "ValueError"
    assert describe_error(KeyError()) == "KeyError"
    assert describe_error(RuntimeError("  \n ")) == "RuntimeError"
    assert describe_error(TimeoutError("slow\nmore")) == "TimeoutError: slow"
