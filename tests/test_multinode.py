"""Two "nodes" on this one machine: two `torchrun` launchers with --nnodes=2 meet through a c10d
rendezvous on 127.0.0.1 and train alanet with gloo, one process each, each in its own copy of the
project (nodes share no disk). The result must equal one process on the same global batch, to the
tolerance of the DDP test in tests/test_pipeline.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest
import torch

from conftest import (DDP_CHECKPOINT, DDP_COMPARABLE, DDP_TRAIN, assert_matches_one_process, repo_from, run_env,
                      tiny_params)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_launcher(rank: int, port: int) -> list[str]:
    """What a user types on node ``rank`` (docs/training.md, "Several machines"), with 127.0.0.1 as
    the first node's address; is_host says which launcher serves the rendezvous store."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", f"--node-rank={rank}",
            "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=alabench-test",
            f"--rdzv-conf=is_host={'true' if rank == 0 else 'false'}", *DDP_TRAIN]


@pytest.mark.pipeline
@pytest.mark.usefixtures("no_mlflow")  # reads no MLflow run
def test_two_nodes_match_one_process(prepared_repo, one_process_checkpoint, tmp_path):
    params = tiny_params()
    params["train_data"].update(DDP_COMPARABLE)
    base = repo_from(prepared_repo, tmp_path / "base", params)
    nodes = [tmp_path / f"node{rank}" for rank in (0, 1)]
    for work in nodes:
        shutil.copytree(base, work, ignore=shutil.ignore_patterns(".git"))

    port = free_port()
    launchers = [subprocess.Popen(node_launcher(rank, port), cwd=work, env=run_env(work), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for rank, work in enumerate(nodes)]
    outputs = [launcher.communicate(timeout=600) for launcher in launchers]
    for launcher, (out, err) in zip(launchers, outputs):
        assert launcher.returncode == 0, f"{launcher.args} failed:\n{out}\n{err}"
    assert any("2 process(es)" in err for _, err in outputs)
    written = [work for work in nodes if (work / DDP_CHECKPOINT).is_file()]
    assert len(written) == 1  # global rank 0 alone writes the checkpoint (and logs to MLflow)

    assert_matches_one_process(one_process_checkpoint, torch.load(written[0] / DDP_CHECKPOINT, weights_only=True))
