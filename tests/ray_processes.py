"""Find and kill the processes behind Ray actors, the way an OOM killer or a lost node would."""

from __future__ import annotations

import os
import signal


def actor_pids(title: str) -> list[int]:
    """PIDs of the Ray worker processes started under this process (its embedded Ray's raylet starts them) whose
    title (``ray::<Class>[.<method>]``) contains ``title``. Only this process's own: another test process on the
    machine (a parallel test worker) has actors of the same name."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # ended while we looked
        if cmdline and cmdline[0].startswith("ray::") and title in cmdline[0]:
            pids.append(proc.pid)
    return sorted(pids)


def kill_one_actor(title: str) -> int:
    """SIGKILL one process of an actor whose title contains ``title``; its PID. Fails when there is none."""
    pids = actor_pids(title)
    assert pids, f"no Ray actor process titled like {title!r}"
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]
