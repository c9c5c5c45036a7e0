"""Kept so that ``from hiwar.failures import describe_error`` (hiwar/judge/job.py, hiwar/judge/metric.py) still
works: the functions live in :mod:`hiwar.errors`. Import them from there; remove this file once nothing uses it."""

from hiwar.errors import describe_error, first_line  # noqa: F401
