"""How many threads torch may use: the CPUs this process may really run on, shared with whoever else is on them.

torch's default (one thread per CPU the machine shows, OpenMP threads spinning while they wait)
thrashes on a shared machine. Measured on 2 idle cores (an ``alanet`` float32 training step at the
default size, median of 12; ``bench/train.py`` measures it through the train stage's own loop):

| threads, OpenMP wait policy | idle | beside one CPU-bound process |
|---|---|---|
| 2, spinning (torch's default) | 0.20 s | 0.75-1.49 s (3.7-7.4x) |
| 2, ``OMP_WAIT_POLICY=PASSIVE`` | 0.37 s | 0.49 s (2.4x) |
| 1 | 0.35 s | 0.35 s (1.7x) |

A passive wait costs an idle 2-thread step 1.8x (as slow as 1 thread), so the policy is left as the
user set it, and the thread count does the work instead:

* the CPUs counted are those of the affinity mask and of the cgroup quota (v2 ``cpu.max``, v1
  ``cpu.cfs_quota_us``), a container's limit rather than the host's core count;
* they are split between the jobs that share them: ``ALABENCH_JOBS`` when set, else the number of
  ``dvc queue`` workers of this repository when this process runs under one (times torchrun's
  processes on this machine, ``LOCAL_WORLD_SIZE``);
* a process takes no more threads than there are CPUs left idle by the others when it starts
  (sampled from ``/proc/stat`` for 0.3 s), and never fewer than 1: 2 threads idle, 1 beside a busy
  process, 1.7x;
* ``OMP_NUM_THREADS``, when the user sets it, is taken as is: a fixed count (for bit-for-bit
  reproducibility under any load: float32 weight gradients depend on the thread count, so a run
  started beside a busy process ends a few bits away from one started on idle cores).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

from alabench.errors import UserError

log = logging.getLogger(__name__)
PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
JOBS_VARIABLE = "ALABENCH_JOBS"
QUEUE_WORKER = "queue-worker"  # `dvc exp queue-worker dvc-exp-<repo hash>-<n>@localhost`: one per `dvc queue` worker


def affinity_cpus() -> int:
    """The CPUs the scheduler lets this process run on (taskset, cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _upwards(mount: Path, group: str) -> list[Path]:
    """``mount/group`` and each of its parents up to ``mount``: a limit may sit on any ancestor, and
    inside a container the path of /proc/self/cgroup may not exist under the mount, only its root."""
    parts = [p for p in group.strip("/").split("/") if p]
    return [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")  # "max 100000" (no limit) or "150000 100000"
    if not text:
        return None
    quota, _, period = text.partition(" ")
    try:
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except ValueError:
        return None


def _v1_quota(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        return int(quota) / int(period) if quota and period and int(quota) > 0 and int(period) > 0 else None
    except ValueError:
        return None


def cgroup_cpus(proc_cgroup: Path | None = None, root: Path | None = None) -> float | None:
    """The CPU quota of this process's cgroups (v2 and v1), in CPUs (1.5 = 150 ms per 100 ms), or None
    where no quota is set. The smallest quota on the way up the hierarchy is the one that binds."""
    text = _read(proc_cgroup or PROC / "self" / "cgroup") or ""
    root = root or CGROUP_ROOT
    quotas = []
    for line in text.splitlines():
        _, controllers, group = (line.split(":", 2) + ["", ""])[:3]
        if not controllers:  # v2: "0::/path"
            quotas += [_v2_quota(folder) for folder in _upwards(root, group)]
        elif "cpu" in controllers.split(","):  # v1: "4:cpu,cpuacct:/path", mounted as cpu,cpuacct or cpu
            for mount in dict.fromkeys([root / controllers, root / "cpu"]):
                quotas += [_v1_quota(folder) for folder in _upwards(mount, group)]
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def available_cpus() -> int:
    """The CPUs this process can use: the affinity mask, capped by the cgroup quota (rounded up)."""
    cpus = affinity_cpus()
    quota = cgroup_cpus()
    return max(1, min(cpus, math.ceil(quota)) if quota is not None else cpus)


def _cmdline(pid: str) -> list[str]:
    raw = _read_bytes(PROC / pid / "cmdline")
    return raw.decode(errors="replace").split("\0") if raw else []


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _parent(pid: str) -> str | None:
    stat = _read(PROC / pid / "stat")  # "pid (name) state ppid ...": the name may hold spaces and ")"
    return stat.rsplit(")", 1)[1].split()[1] if stat and ")" in stat else None


def _worker_node(args: list[str]) -> str | None:
    """The node name of a `dvc exp queue-worker <node>` command line, else None."""
    if QUEUE_WORKER in args and args.index(QUEUE_WORKER) + 1 < len(args):
        return args[args.index(QUEUE_WORKER) + 1]
    return None


def queue_workers() -> int:
    """How many jobs share the CPUs: ``ALABENCH_JOBS`` when set, else, when this process runs under a
    ``dvc queue`` worker, the live workers of the same repository (their node names share its hash:
    ``dvc-exp-<hash>-<n>@localhost``), else 1."""
    value = os.environ.get(JOBS_VARIABLE)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise UserError(f"{JOBS_VARIABLE}={value!r}: must be a whole number >= 1 (the jobs sharing the CPUs); "
                            f"set it so or unset it")
        return int(value)
    pid: str | None = str(os.getpid())
    node = None
    for _ in range(64):  # up the process tree to a queue worker, if any
        if pid in (None, "0", "1") or (node := _worker_node(_cmdline(pid))):
            break
        pid = _parent(pid)
    if not node:
        return 1
    prefix = node.rsplit("-", 1)[0] + "-"  # "dvc-exp-<hash>-"
    nodes = {n for p in PROC.iterdir() if p.name.isdigit()
             if (n := _worker_node(_cmdline(p.name))) and n.startswith(prefix)}
    return max(1, len(nodes))


def busy_cpus(seconds: float = 0.3) -> float:
    """How many of this process's CPUs were busy (with anything) over the next ``seconds``, from
    /proc/stat; 0 where it cannot be read. This process idles meanwhile, so it is other work."""

    def sample() -> dict[str, tuple[int, int]]:
        out = {}
        for line in (_read(PROC / "stat") or "").splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu" and len(fields) >= 5:
                ticks = [int(f) for f in fields[:8]]
                out[name] = (sum(ticks), ticks[3] + ticks[4])  # total, idle + iowait
        return out

    mine = {f"cpu{n}" for n in (os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ())}
    before = sample()
    time.sleep(seconds)
    after = sample()
    busy = 0.0
    for name, (total, idle) in after.items():
        if name in before and (not mine or name in mine) and total > before[name][0]:
            busy += 1 - (idle - before[name][1]) / (total - before[name][0])
    return busy


def thread_count(requested: int = 0, busy: float | None = None) -> int:
    """Threads for this process: ``requested`` (0: as many as fit) capped by its share of the
    available CPUs and by the CPUs the others leave idle (``busy``: measured when None), at least 1;
    or ``OMP_NUM_THREADS`` exactly, when the user set it."""
    fixed = os.environ.get("OMP_NUM_THREADS", "").strip()
    if fixed.isdigit() and int(fixed) > 0:
        return int(fixed)
    cpus = available_cpus()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)  # torchrun's processes on this machine share them too
    share = max(1, cpus // (queue_workers() * max(1, local)))
    most = min(requested or share, share)
    if most == 1:
        return 1  # no need to look at the load
    free = cpus - (busy_cpus() if busy is None else busy)
    return max(1, min(most, math.floor(free + 0.5)))


def configure_threads(requested: int = 0, threads: int | None = None) -> int:
    """Set torch's intra-op threads to :func:`thread_count` (or to ``threads``, e.g. the count a resumed
    run started with), inter-op threads alike where still possible; return the count."""
    import torch  # here, so that the CPU counting above stays importable without torch

    count = threads or thread_count(requested)
    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:  # only before the first inter-op work; later calls keep the first value
        pass
    log.info("%d torch thread(s): %d CPU(s) available, %d job(s) sharing them", count, available_cpus(),
             queue_workers())
    return count
