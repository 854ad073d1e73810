"""What a user sees when a stage stops: one `error:` line, never a traceback, never twice."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from alabench.cli import INTERRUPTED, run_stage
from alabench.errors import UserError
from conftest import REPO


def _stage(work):
    with pytest.raises(SystemExit) as info:
        run_stage("test", work)
    return info.value.code


def _raise(err: BaseException):
    def work() -> None:
        raise err
    return work


@pytest.mark.parametrize("err, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "results/synth/mixed/.alanet.x1y2z3w4.tmp"),
     "error: results/synth/mixed/.alanet.x1y2z3w4.tmp: permission denied: make its folder writable by you "
     "(`chmod -R u+w results/synth/mixed`) and run again"),
    (OSError(errno.ENOSPC, "No space left on device", "data/sharp/local/test/x/00001.png"),
     "error: data/sharp/local/test/x/00001.png: no space left on device: free some space and run again"),
    (UserError("params.yaml: unknown key 'train.epocs'"), "error: params.yaml: unknown key 'train.epocs'"),
])
def test_fixable_errors_print_one_line_once(err, expected, capsys):
    assert _stage(_raise(err)) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == expected and expected not in captured.out  # not also as a log line


def test_other_os_errors_keep_their_traceback():
    with pytest.raises(FileNotFoundError):
        run_stage("test", _raise(FileNotFoundError(errno.ENOENT, "No such file", "bug.txt")))


WORKER = """
import signal, sys, time
# A terminal's Ctrl-C reaches a process with Python's default handler; one launched in the background
# (nohup, `cmd &` in a script, as CI may run the tests) starts with SIGINT ignored and never hears it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from alabench.cli import run_stage
from alabench.parallel import executor

def nap(i):
    time.sleep(30)

def work():
    with executor(2) as pool:
        print("ready", flush=True)
        list(pool.map(nap, range(2)))

run_stage("test", work)
"""


@pytest.mark.pipeline  # starts processes of its own
def test_ctrl_c_prints_one_line_even_with_worker_processes():
    """Ctrl-C in a terminal signals the whole process group: the stage and its workers."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # the workers have started
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == f"error: {INTERRUPTED}", err


FINISHING = """
import atexit, sys
from alabench.cli import stage_main

def work():
    atexit.register(lambda: print("exit handler ran", flush=True))
    sys.stdout.write("unflushed output")  # no newline, no flush: the fast exit must not lose it

stage_main("test", work)
print("not reached")
"""


@pytest.mark.pipeline  # starts processes of its own
def test_a_stage_that_succeeds_exits_at_once_with_its_exit_handlers_run_and_output_flushed(tmp_path):
    done = subprocess.run([sys.executable, "-c", FINISHING], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "unflushed outputexit handler ran\n", done.stdout
    assert "test: done in" in done.stderr  # the log line, written before the exit
    failing = FINISHING.replace('sys.stdout.write("unflushed output")', "raise UserError('bad.yaml: fix it')")
    failed = subprocess.run([sys.executable, "-c", "from alabench.errors import UserError\n" + failing], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and failed.stderr.strip() == "error: bad.yaml: fix it", failed.stderr
