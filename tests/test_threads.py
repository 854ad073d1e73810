"""alabench.threads: the CPUs really available (affinity, cgroup v1 / v2 quotas), their share among
dvc queue workers and busy neighbours, and the OpenMP wait policy left as the user set it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from alabench import threads
from alabench.errors import UserError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cgroup_v2_quota_binds_at_the_tightest_level(tmp_path):
    proc = write(tmp_path / "cgroup", "0::/user.slice/job\n")
    root = tmp_path / "fs"
    write(root / "user.slice" / "job" / "cpu.max", "max 100000\n")  # no limit here...
    write(root / "user.slice" / "cpu.max", "150000 100000\n")  # ...but its parent allows 1.5 CPUs
    write(root / "cpu.max", "400000 100000\n")
    assert threads.cgroup_cpus(proc, root) == 1.5


def test_cgroup_v2_in_a_container_reads_the_root_when_the_path_is_the_hosts(tmp_path):
    proc = write(tmp_path / "cgroup", "0::/kubepods/pod1/abc\n")  # not mounted under that name inside
    write(tmp_path / "fs" / "cpu.max", "200000 100000\n")
    assert threads.cgroup_cpus(proc, tmp_path / "fs") == 2.0
    write(tmp_path / "fs" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpus(proc, tmp_path / "fs") is None


def test_cgroup_v1_cfs_quota(tmp_path):
    proc = write(tmp_path / "cgroup", "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n")
    folder = tmp_path / "fs" / "cpu,cpuacct" / "docker" / "x"
    write(folder / "cpu.cfs_quota_us", "50000\n")
    write(folder / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpus(proc, tmp_path / "fs") == 0.5
    write(folder / "cpu.cfs_quota_us", "-1\n")  # unlimited
    assert threads.cgroup_cpus(proc, tmp_path / "fs") is None
    assert threads.cgroup_cpus(write(tmp_path / "none", "garbage\n"), tmp_path / "fs") is None


@pytest.mark.parametrize("affinity, quota, expected", [(8, None, 8), (8, 1.5, 2), (8, 0.2, 1), (2, 16.0, 2)])
def test_available_cpus_is_the_affinity_capped_by_the_quota(monkeypatch, affinity, quota, expected):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: affinity)
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: quota)
    assert threads.available_cpus() == expected


def fake_process(proc: Path, pid: int, parent: int, *args: str) -> None:
    write(proc / str(pid) / "cmdline", "\0".join(args) + "\0")
    write(proc / str(pid) / "stat", f"{pid} (x) S {parent} 1 1 0 -1\n")


def test_dvc_queue_workers_of_this_repository_are_counted(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    monkeypatch.setattr(threads, "PROC", proc)
    monkeypatch.delenv(threads.JOBS_VARIABLE, raising=False)
    me = os.getpid()
    fake_process(proc, me, 901, "python", "-m", "stages.train")
    fake_process(proc, 901, 900, "dvc", "exp", "exec-run")
    for pid, node in ((900, "dvc-exp-abc123-1@localhost"), (910, "dvc-exp-abc123-2@localhost"),
                      (920, "dvc-exp-abc123-3@localhost"), (930, "dvc-exp-ffffff-1@localhost")):
        fake_process(proc, pid, 1, "/venv/bin/python", "/venv/bin/dvc", "exp", "queue-worker", node, "--clean")
    assert threads.queue_workers() == 3  # the other repository's worker is not ours
    fake_process(proc, 901, 1, "bash")  # the same stage, not run by a queue worker
    assert threads.queue_workers() == 1


def test_alabench_jobs_sets_the_share_and_is_checked(monkeypatch):
    monkeypatch.setenv(threads.JOBS_VARIABLE, "3")
    assert threads.queue_workers() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(threads.JOBS_VARIABLE, bad)
        with pytest.raises(UserError, match=rf"ALABENCH_JOBS='{bad}': must be a whole number >= 1"):
            threads.queue_workers()


@pytest.mark.parametrize("requested, jobs, local, busy, expected", [
    (0, 1, 1, 0.0, 4),  # idle: every CPU
    (2, 1, 1, 0.0, 2),  # the param is an upper bound
    (0, 2, 1, 0.0, 2),  # two queue workers: half each
    (0, 1, 2, 0.0, 2),  # two torchrun processes on this machine
    (0, 1, 1, 1.0, 3),  # one CPU busy with another process
    (0, 1, 1, 3.7, 1),  # all but a fraction busy: still one thread
    (8, 1, 1, 1.6, 2),
])
def test_thread_count(monkeypatch, requested, jobs, local, busy, expected):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "queue_workers", lambda: jobs)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.thread_count(requested, busy) == expected


def test_omp_num_threads_set_by_the_user_is_taken_as_is(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.thread_count(1, busy=2.0) == 3


def test_busy_cpus_counts_this_processs_cpus_from_proc_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "PROC", tmp_path)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    line = "cpu{} {} 0 {} {} {} 0 0 0 0 0\n"  # user nice system idle iowait ...
    write(tmp_path / "stat", "cpu 0 0 0 0 0\n" + "".join(line.format(n, 100, 0, 100, 0) for n in range(3)))
    later = {0: (150, 0, 150, 0), 1: (200, 0, 100, 0), 2: (100, 0, 200, 0)}  # cpu0 half busy, cpu1 busy, cpu2 idle

    def sleep(seconds):
        write(tmp_path / "stat", "cpu 0 0 0 0 0\n" + "".join(line.format(n, *later[n]) for n in range(3)))
    monkeypatch.setattr(threads.time, "sleep", sleep)
    assert threads.busy_cpus() == pytest.approx(1.5)  # cpu2, busy or not, is not this process's


def spin_count(code: str, **env: str) -> str:
    """libgomp's own spin count (0 = PASSIVE: a waiting thread sleeps) as it starts in ``code``."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                            env={**clean, "OMP_DISPLAY_ENV": "verbose", **env})
    line = next(line for line in result.stderr.splitlines() if "GOMP_SPINCOUNT" in line)
    return line.split("=")[1].strip().strip("'")


@pytest.mark.pipeline  # starts processes of its own
def test_stages_leave_the_openmp_wait_policy_as_the_user_set_it():
    """A passive wait costs an idle 2-thread step 1.8x (module docstring): the stages that run torch keep
    its spinning default, and a user's choice reaches OpenMP unchanged (both stages in one process each
    time: either one setting the policy shows)."""
    stages = "import stages.train, stages.evaluate"
    assert spin_count(stages) == spin_count("import torch") == "300000"
    assert spin_count(stages, OMP_WAIT_POLICY="PASSIVE") == "0"
    assert spin_count(stages, OMP_WAIT_POLICY="ACTIVE") == "30000000000"


@pytest.mark.pipeline  # starts processes of its own
def test_a_stage_started_beside_busy_processes_takes_the_cpus_they_leave(monkeypatch):
    """The real /proc/stat sample, with real CPU-bound neighbours: as many threads as idle CPUs, at least 1."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.JOBS_VARIABLE, raising=False)
    cpus = threads.available_cpus()
    busy = min(cpus, 8)
    neighbours = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        import time

        time.sleep(0.5)  # let them start spinning
        assert threads.thread_count(cpus) <= max(1, cpus - busy + 1)
    finally:
        for process in neighbours:
            process.kill()
            process.wait()
