"""An HTML template for `dvc plots show` that works offline: the Vega libraries inline, not from a CDN.

DVC's own page loads vega, vega-lite and vega-embed from cdn.jsdelivr.net, so without internet it is
blank. ``--html-template`` (or ``plots.html_template`` in the DVC config) takes a page with a
``{plot_divs}`` placeholder; this one carries the three libraries inline. They come from a pinned
PyPI wheel that bundles them for offline use (panel's ``dist/bundled/vegaplot``: vega 6.1.2,
vega-lite 6.3.0, vega-embed 7.0.2, UMD builds), downloaded once by pip with its hash checked and
cached beside the weights sdist (alabench.sdist), so later runs and tests need no network; ``make
venv`` pre-fetches it (this module, like alabench.sdist, needs only the standard library).

    python -m alabench.vega            # writes reports/vega-template.html
    python -m dvc plots show --html-template reports/vega-template.html --open
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from alabench import sdist
from alabench.errors import UserError

PACKAGE = "panel"
VERSION = "1.9.4"
WHEEL = "panel-1.9.4-py3-none-any.whl"
WHEEL_SHA256 = "c89c4c1e728297daf0628ea5070fb0da8ad77781e2a3142d302479537c1de6a4"
# Script (in the order the page loads them) -> (member of the wheel, its sha256).
SCRIPTS = {
    "vega@6.1.2.js": ("panel/dist/bundled/vegaplot/vega@6.1.2",
                      "08f796b6a571b0b46d819f07fb7581ca16565af86985e1766bb180638576b3f8"),
    "vega-lite@6.3.0.js": ("panel/dist/bundled/vegaplot/vega-lite@6.3.0",
                           "8adcfe6639b05208977cbfc325cba5e92f8b33fc15789e731328949b500bb97b"),
    "vega-embed@7.0.2.js": ("panel/dist/bundled/vegaplot/vega-embed@7.0.2",
                            "c7111a41190080938b14c1de00074d9bda16ef2199e2919dd038cddf97d87354"),
}
DEFAULT_OUT = Path("reports/vega-template.html")
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot (Vega inline: works offline)</title>
{scripts}
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


class VegaError(UserError, RuntimeError):
    """The pinned Vega libraries cannot be had; the message names the file and what to do."""


def script_dir(cache: Path | None = None) -> Path:
    return (cache or sdist.cache_root()) / "vega"


def _valid(path: Path, sha256: str) -> bool:
    return path.is_file() and sdist.sha256_file(path) == sha256


def fetch_wheel(python: Path | str = sys.executable, cache: Path | None = None) -> Path:
    """The cached wheel; downloaded with pip (hash required) only when missing or wrong."""
    target = (cache or sdist.cache_root()) / "downloads" / WHEEL
    if _valid(target, WHEEL_SHA256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=target.parent) as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        try:
            sdist.pip_download(python, requirement, Path(tmp) / "out", form="--only-binary")
        except (subprocess.CalledProcessError, OSError) as err:
            raise VegaError(f"pip could not download {PACKAGE}=={VERSION} ({err}), which holds the Vega "
                            f"libraries; run `python -m alabench.vega` once with access to PyPI") from None
        got = Path(tmp) / "out" / WHEEL
        if not _valid(got, WHEEL_SHA256):
            raise VegaError(f"{got.name} from pip is missing or has the wrong sha256 (expected {WHEEL_SHA256}); "
                            "nothing was cached")
        os.replace(got, target)
    return target


def scripts(python: Path | str = sys.executable, cache: Path | None = None) -> dict[str, Path]:
    """name -> the cached, hash-checked script; extracted from the wheel when missing (by exact member
    name into a file named here, so no archive path decides where anything is written)."""
    folder = script_dir(cache)
    found = {name: folder / name for name in SCRIPTS}
    if all(_valid(found[name], sha) for name, (_, sha) in SCRIPTS.items()):
        return found
    wheel = fetch_wheel(python, cache)
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, (member, sha) in SCRIPTS.items():
            try:
                data = archive.read(member)
            except KeyError:
                raise VegaError(f"{wheel}: has no {member}; delete it and rerun `python -m alabench.vega`") from None
            if hashlib.sha256(data).hexdigest() != sha:
                raise VegaError(f"{wheel}: {member} has the wrong sha256 (expected {sha}); delete the wheel and rerun")
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, found[name])
    return found


def template(paths: dict[str, Path]) -> str:
    """DVC's page with the libraries inline. Source-map comments are dropped (the browser would try to
    fetch them); DVC fills ``{plot_divs}`` and ``{refresh_tag}`` by plain string replacement."""
    blocks = []
    for name, path in paths.items():
        code = re.sub(r"^//# sourceMappingURL=.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
        if "</script" in code.lower() or "{plot_divs}" in code:
            raise VegaError(f"{path}: cannot be inlined (contains '</script' or '{{plot_divs}}')")
        blocks.append(f"    <script>/* {name} */\n{code}\n    </script>")
    return PAGE.format(scripts="\n".join(blocks))


def write_template(out: Path = DEFAULT_OUT, cache: Path | None = None) -> Path:
    from alabench.frames import atomic_write_text  # numpy behind it: not for the bootstrap's stdlib Python

    atomic_write_text(out, template(scripts(cache=cache)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    try:
        out = write_template(args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{out}: now `python -m dvc plots show --html-template {out} --open` works offline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
