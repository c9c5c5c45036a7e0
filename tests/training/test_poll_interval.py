"""Ray Train's controller is asked to poll its workers every 0.25 s during ``trainer.fit()`` (not its 2 s default),
and Ray Train passes that setting on to the controller; a value the user exported is left alone."""

from __future__ import annotations

import os

import pytest

from hiwar.models.spec import ModelSpec
from hiwar.training.config import TrainingConfig
from hiwar.training.run import POLL_INTERVAL_ENV, _fit


class _Trainer:
    """Records, at fit(), the interval set and what Ray Train would hand its controller."""

    def fit(self) -> tuple[str | None, dict[str, str]]:
        from ray.train.v2._internal.constants import get_env_vars_to_propagate

        return os.environ.get(POLL_INTERVAL_ENV), get_env_vars_to_propagate()


def test_fit_polls_every_quarter_second_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(POLL_INTERVAL_ENV, raising=False)
    seen, propagated = _fit(_Trainer(), ModelSpec(model="m"), TrainingConfig(), tmp_path)
    assert seen == "0.25"
    assert propagated[POLL_INTERVAL_ENV] == "0.25"  # the controller (a Ray actor) gets it in its runtime env
    assert POLL_INTERVAL_ENV not in os.environ


def test_a_user_setting_wins(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(POLL_INTERVAL_ENV, "3")
    seen, propagated = _fit(_Trainer(), ModelSpec(model="m"), TrainingConfig(), tmp_path)
    assert (seen, propagated[POLL_INTERVAL_ENV], os.environ[POLL_INTERVAL_ENV]) == ("3", "3", "3")
