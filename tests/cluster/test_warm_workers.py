"""Warm workers: prestarted for hiwar's model actors only, warmed before an actor arrives, counted once."""

from __future__ import annotations

import importlib
import os
import sys
import time

import pytest

from hiwar.cluster import warm_workers


@pytest.fixture
def fresh_books(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """An empty count of unclaimed warm workers for this test (the module keeps it per driver process)."""
    books: list[float] = []
    monkeypatch.setattr(warm_workers, "_unclaimed", books)
    monkeypatch.setattr(warm_workers, "_prestarted", 0)
    monkeypatch.delenv(warm_workers.SWITCH_ENV, raising=False)
    return books


def test_the_runtime_env_names_a_hook_that_imports(fresh_books) -> None:
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

    hook = warm_workers.runtime_env()["env_vars"][WORKER_PROCESS_SETUP_HOOK_ENV_VAR]
    module, _, name = hook.rpartition(".")
    assert getattr(importlib.import_module(module), name).__name__ == "warm_worker"


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_the_switch_turns_warm_workers_off(monkeypatch: pytest.MonkeyPatch, fresh_books, value: str) -> None:
    monkeypatch.setenv(warm_workers.SWITCH_ENV, value)
    assert not warm_workers.enabled()
    assert warm_workers.ensure(2) == 0
    assert warm_workers.take(1) is None


def test_without_ray_nothing_is_asked_for(fresh_books) -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("this session's Ray is up")
    assert warm_workers.ensure(1) == 0 and warm_workers.take(1) is None


def test_a_pool_takes_only_waiting_workers_and_counts_them(monkeypatch: pytest.MonkeyPatch, fresh_books) -> None:
    monkeypatch.setattr(warm_workers, "enabled", lambda: True)
    monkeypatch.setattr(warm_workers, "registered", lambda: 1)
    assert warm_workers.take(2) is None  # none waiting: the actors start as before, on Ray's plain workers
    fresh_books.extend([time.monotonic() + 60, time.monotonic() - 1])  # one alive, one past its keep-alive
    assert warm_workers.unclaimed() == 1
    assert warm_workers.take(2) == warm_workers.runtime_env()
    assert warm_workers.unclaimed() == 0


def test_asking_about_workers_never_starts_ray(fresh_books) -> None:
    """Ray's job id starts a local Ray when none runs: the helpers that need it must not ask then."""
    import ray

    if ray.is_initialized():
        pytest.skip("this session's Ray is up")
    assert warm_workers.registered() == 0 and warm_workers.states() == {}
    assert not ray.is_initialized()


@pytest.mark.ray
def test_only_model_actors_land_on_prestarted_warm_workers(ray_local, fresh_books) -> None:
    """A prestarted worker runs hiwar's warm-up as it starts; an actor with the runtime env lands on it (its
    process is older than the actor) and finds torch imported; a plain actor's worker imports nothing."""
    import psutil

    ray = ray_local

    @ray.remote(num_cpus=1)
    class Where:
        def __init__(self) -> None:
            import hiwar.startup

            self.seen = {
                "created": psutil.Process().create_time(),
                "ctor": time.time(),
                "warmed_at": hiwar.startup.warmed_at,
                "torch": "torch" in sys.modules,
                "pid": os.getpid(),
            }

        def get(self) -> dict:
            return self.seen

    assert warm_workers.ensure(1) == 1
    assert warm_workers.ensure(1) == 0  # counted: a second call asks for none
    deadline = time.monotonic() + 180
    while "warm" not in warm_workers.states().values():  # it imports torch and transformers (about 8 s here)
        assert time.monotonic() < deadline, f"no warm worker: {warm_workers.states()}"
        time.sleep(0.5)
    assert warm_workers.registered() >= 1
    submitted = time.time()
    warm = Where.options(runtime_env=warm_workers.take(1)).remote()
    plain = Where.remote()
    seen, other = ray.get([warm.get.remote(), plain.get.remote()], timeout=120)
    assert seen["created"] < submitted - 1, "the actor started its own worker instead of the prestarted one"
    assert warm_workers.states()[seen["pid"]] == "warm"
    assert seen["torch"] and seen["warmed_at"] is not None and seen["warmed_at"] < submitted
    assert seen["ctor"] - submitted < 5  # no import left for the actor (cold: about 8 s)
    assert not other["torch"] and other["warmed_at"] is None
    assert warm_workers.unclaimed() == 0
    ray.kill(warm)
    ray.kill(plain)
