"""What a trained model's bits depend on: threads, precision, the oneDNN instruction set, the machine.

Trains the default `alanet` (params.yaml's size) for ``--steps`` Adam steps on seeded random windows
(no data set needed, so it runs anywhere, CI included) in a fresh process per setting, and prints
the sha256 of the final weights for each setting:

* ``threads`` 1 or 2 (torch intra-op threads: the order of a float sum);
* ``precision`` float32 or bfloat16 autocast (the train stage's ``auto`` on a CPU with bf16);
* ``isa``: oneDNN's instruction-set ceiling, ``ONEDNN_MAX_CPU_ISA`` (``default``: the best the CPU
  has, AMX where present; ``AVX512_CORE``, ``AVX2``: the same kernels on every CPU that has them).

Within one run, settings whose hashes are equal give bit-identical training. Across machines, compare
the printed table with the one recorded in docs/reproducing.md ("What reproduces"): the script
also prints, for every setting, whether the hash equals the recorded one (``--record`` rewrites
bench/reproducibility.json with this machine's hashes).

    .venv/bin/python bench/reproducibility.py [--steps 10] [--record]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RECORD = Path(__file__).with_suffix(".json")
SETTINGS = [{"threads": t, "precision": p, "isa": i}
            for t, p, i in itertools.product((1, 2), ("float32", "bfloat16"), ("default", "AVX512_CORE", "AVX2"))]


def weights_hash(threads: int, precision: str, steps: int) -> str:
    """sha256 of the weights after ``steps`` seeded steps (run in a process whose ISA is already set)."""
    import torch

    from alabench.config import load_params
    from alabench.methods import get_method
    from models.losses import ReconstructionLoss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    alanet = get_method("alanet")
    model = alanet.build(params, alanet.options_from(params)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = ReconstructionLoss(None, 0.0)
    data = torch.Generator().manual_seed(1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")
    for _ in range(steps):
        inputs = torch.rand(4, 3, 3, 64, 64, generator=data)
        targets = [torch.rand(4, 3, 3, 64, 64, generator=data), torch.rand(4, 2, 3, 64, 64, generator=data)]
        with autocast:
            deblur, interp = model(inputs)
            loss = loss_fn([deblur.float(), interp.float()], targets)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return sorted({f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in text})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--record", action="store_true", help=f"write this machine's hashes to {RECORD.name}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one setting, as JSON
    args = parser.parse_args()
    if args.one:
        setting = json.loads(args.one)
        print(weights_hash(setting["threads"], setting["precision"], args.steps))
        return
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    import torch
    print(f"CPU: {cpu_model()}; flags: {' '.join(cpu_flags())}; torch {torch.__version__}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}; {args.steps} steps")
    print(f"recorded on: {recorded.get('cpu', 'nothing recorded')}")
    print(f"{'threads':>7} {'precision':>9} {'isa':>11}  {'weights sha256':<16}  recorded")
    hashes = {}
    for setting in SETTINGS:
        env = dict(os.environ)
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        if setting["isa"] != "default":
            env["ONEDNN_MAX_CPU_ISA"] = setting["isa"]
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", json.dumps(setting)],
                             env=env, capture_output=True, text=True, check=True)
        key = f"{setting['threads']}/{setting['precision']}/{setting['isa']}"
        hashes[key] = out.stdout.strip().splitlines()[-1]
        previous = recorded.get("hashes", {}).get(key)
        same = "-" if previous is None or recorded.get("steps") != args.steps else (
            "same" if previous == hashes[key] else "differs")
        print(f"{setting['threads']:>7} {setting['precision']:>9} {setting['isa']:>11}  {hashes[key]:<16}  {same}",
              flush=True)
    if args.record:
        RECORD.write_text(json.dumps({"cpu": f"{cpu_model()} ({' '.join(cpu_flags())})", "torch": torch.__version__,
                                      "steps": args.steps, "hashes": hashes}, indent=1) + "\n")


if __name__ == "__main__":
    main()
