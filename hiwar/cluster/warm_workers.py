"""Warm workers: Ray worker processes that have started and imported torch and transformers before a model actor
asks for one.

A fresh engine or scorer actor spends its first seconds starting a Python process and importing torch and
transformers (about 7.5 s on 2 cores; ``docs/generation.md``, "Actor start-up"). Two Ray mechanisms move that off
the actor's path:

- the raylet's ``PrestartWorkers`` call starts workers for one job and one runtime env ahead of need, and keeps
  them for ``keep_alive_s`` until an actor with that same runtime env takes one;
- a runtime env's worker setup hook runs in each of its workers as the worker starts, before it takes work.

hiwar's model actors (the transformers engine, the perplexity scorer, the one-pool ``ModelWorker``, RAVEN's
encoder) all get :func:`runtime_env`, whose setup hook is :func:`hiwar.startup.warm_worker`. So only workers
started for those actors warm up: Ray Data's own actors and tasks run in plain workers and pay nothing (a
cluster-wide preload, tried first, made every one of them import torch and slowed the demo from 145 to 165 s).

When a command knows which actors it starts first, it asks the driver's raylet for that many warm workers as it
joins Ray (``session.connect(warm=...)``), so their imports overlap with the driver's own start-up work (preflight,
tokenizer checks, Ray Data's planning and helper actors); a pool built later takes the ones waiting (:func:`take`).
An actor that lands on a warm worker yields its first rows about a second after it is submitted. Prestarting is
skipped, and actors start cold exactly as before, when it cannot match: a cluster of more than one node (the raylet
called is the driver's own), or a job with its own runtime env (Ray merges it into the actors' env, which the
prestarted workers would then not match). ``HIWAR_WARM_WORKERS=0`` turns it off.

The bookkeeping is the driver's: how many prestarted workers no pool has taken yet, so a later call asks only for
the ones missing and a pool of two never gets four.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger(__name__)

SETUP_HOOK = "hiwar.startup.warm_worker"
SWITCH_ENV = "HIWAR_WARM_WORKERS"  # "0" turns warm workers off
KEEP_ALIVE_S = 900  # an unclaimed warm worker lives this long (a stage that waits longer starts its actors cold)

KV_NAMESPACE = "hiwar_warm_workers"  # each warm worker's setup hook writes "<job id>:<pid>" here once registered
REGISTER_WAIT_S = 10.0  # how long a pool waits for prestarted workers to register before it starts anyway

_unclaimed: list[float] = []  # monotonic deadlines of prestarted workers no pool has taken yet
_prestarted = 0  # workers this driver asked for, all told (to compare with the ones registered)
_last_asked = float("-inf")  # monotonic time of the last request
_said = False


def enabled() -> bool:
    """Whether model actors get warm workers: not switched off, and Ray is running in this process."""
    if os.environ.get(SWITCH_ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    import ray

    return ray.is_initialized()


def runtime_env() -> dict[str, Any]:
    """The runtime env of hiwar's model actors: Ray's worker setup hook set to :data:`SETUP_HOOK` (as the env
    var Ray reads in every worker it starts; an actor-level ``worker_process_setup_hook`` key is not run)."""
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

    return {"env_vars": {WORKER_PROCESS_SETUP_HOOK_ENV_VAR: SETUP_HOOK}}


def unclaimed() -> int:
    """Prestarted workers that no pool has taken yet (and whose keep-alive has not run out)."""
    now = time.monotonic()
    _unclaimed[:] = [deadline for deadline in _unclaimed if deadline > now]
    return len(_unclaimed)


def prestart(n: int, keep_alive_s: int = KEEP_ALIVE_S) -> int:
    """Ask the driver's raylet to start ``n`` warm workers for this job now; return how many were asked for.

    Asynchronous: the workers start and warm while the caller goes on. Returns 0, with one warning per process
    naming the reason, when warm workers are off or cannot match (see the module docstring); nothing fails.
    """
    if n <= 0 or not enabled():
        return 0
    try:
        reason = _cannot_match()
        if reason:
            _say_once(logging.INFO, f"warm workers skipped: {reason}; actors start cold")
            return 0
        _send_prestart(n, keep_alive_s)
    except Exception as err:  # noqa: BLE001 - a speed-up only: the actors then start cold, as without it
        _say_once(logging.WARNING, f"warm workers unavailable ({type(err).__name__}: {err}); actors start cold")
        return 0
    global _prestarted, _last_asked
    _prestarted += n
    _last_asked = time.monotonic()
    _unclaimed.extend([_last_asked + keep_alive_s - 5] * n)
    log.debug("prestarted %d warm worker(s)", n)
    return n


def ensure(n: int) -> int:
    """Make sure ``n`` warm workers are prestarted and unclaimed, for actors that are coming; return how many
    this call asked for (the ones missing).

    At most as many as the node has cores and the cluster CPUs: more would import torch side by side for actors
    that cannot run yet, slowing the ones that can (four at once on 2 cores made an evaluation 7 s slower)."""
    if not enabled() or n <= 0:
        return 0
    import ray

    cap = min(int(ray.cluster_resources().get("CPU", 1)), os.cpu_count() or 1)
    return prestart(min(n, cap) - unclaimed())


def take(n: int) -> dict[str, Any] | None:
    """For a pool of ``n`` model actors about to be built: count up to ``n`` prestarted warm workers as taken and
    return the runtime env the actors must carry; None when none is waiting (or warm workers are off).

    Nothing is prestarted here: workers asked for now would start no sooner than the actors' own, and Ray could
    start both (two processes importing torch at once). An actor without the runtime env may instead take one of
    the plain workers Ray keeps idle, which has Python and Ray loaded already.
    """
    if not enabled() or not unclaimed():
        return None
    _wait_registered()
    del _unclaimed[: min(n, len(_unclaimed))]
    return runtime_env()


def mark(state: str) -> None:
    """Called by the setup hook in a warm worker (which Ray runs once the worker has registered with its raylet):
    record this worker's ``state``, "registered" and then "warm", for the driver, whose pools wait for the first
    (:func:`take`)."""
    import ray
    from ray.experimental.internal_kv import _internal_kv_put

    key = f"{ray.get_runtime_context().get_job_id()}:{os.getpid()}"
    _internal_kv_put(key, state.encode(), namespace=KV_NAMESPACE)


def _marked() -> list[bytes]:
    """The KV keys that this job's warm workers have written (:func:`mark`); none when Ray is not running."""
    import ray
    from ray.experimental.internal_kv import _internal_kv_list

    if not ray.is_initialized():  # asking Ray for the job id would start a local Ray
        return []
    return _internal_kv_list(f"{ray.get_runtime_context().get_job_id()}:", namespace=KV_NAMESPACE)


def states() -> dict[int, str]:
    """The warm workers of this job that have registered so far, by process id, with their state."""
    from ray.experimental.internal_kv import _internal_kv_get

    return {
        int(key.rsplit(b":", 1)[1]): (_internal_kv_get(key, namespace=KV_NAMESPACE) or b"").decode()
        for key in _marked()
    }


def registered() -> int:
    """How many warm workers of this job have registered with their raylet so far."""
    return len(_marked())


def _wait_registered() -> None:
    """Wait until every worker prestarted so far has registered, at most until :data:`REGISTER_WAIT_S` after the
    last request.

    An actor submitted while its warm worker is still starting is not given to that worker: Ray starts another
    process for it, and both import torch at once. A worker registers about a second after it is asked for, so a
    pool built right after the request waits that long instead.
    """
    deadline = _last_asked + REGISTER_WAIT_S  # a worker that never registers (it died) holds no pool up for long
    try:
        while registered() < _prestarted and time.monotonic() < deadline:
            time.sleep(0.1)
    except Exception as err:  # noqa: BLE001 - a speed-up only: the actors start now, warm or not
        log.debug("cannot tell whether warm workers registered: %s", err)


def _cannot_match() -> str | None:
    """Why prestarted workers would not match this job's actors, or None when they would."""
    import ray

    if ray.get_runtime_context().runtime_env:
        return "this Ray job has its own runtime env"
    if sum(1 for node in ray.nodes() if node.get("Alive")) != 1:
        return "the cluster has more than one node"
    return None


def _send_prestart(n: int, keep_alive_s: int) -> None:
    """The raylet's ``PrestartWorkers`` call, on the driver's node, for this job and :func:`runtime_env` (the
    runtime env serialised as Ray serialises an actor's, so the raylet's worker pool matches them)."""
    import ray
    from ray._private.grpc_utils import init_grpc_channel
    from ray._private.utils import get_runtime_env_info, parse_runtime_env_for_task_or_actor
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    node_id = ray.get_runtime_context().get_node_id()
    node = next(node for node in ray.nodes() if node["NodeID"] == node_id)
    info = get_runtime_env_info(parse_runtime_env_for_task_or_actor(runtime_env()), is_job_runtime_env=False)
    request = node_manager_pb2.PrestartWorkersRequest(
        language=common_pb2.PYTHON,
        job_id=bytes.fromhex(ray.get_runtime_context().get_job_id()),
        runtime_env_info=info,
        keep_alive_duration_secs=keep_alive_s,
        num_workers=n,
    )
    channel = init_grpc_channel(f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}")
    try:
        node_manager_pb2_grpc.NodeManagerServiceStub(channel).PrestartWorkers(request, timeout=10)
    finally:
        channel.close()


def _say_once(level: int, message: str) -> None:
    """Log why warm workers are not used, once per process (every pool would say the same)."""
    global _said
    if not _said:
        log.log(level, message)
        _said = True
