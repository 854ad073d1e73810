"""Methods run elsewhere: export the prepared test inputs as a plain folder, score a folder of outputs.

The suite's value is its protocol: the same inputs, ground truth, metrics and averaging for every
method. A method whose official code runs on another machine (BIN, DeMFI, BiT, your own) needs only
the inputs and a file-name contract, not a port into ``baselines/``:

* :func:`export_inputs` writes ``<clip>/input_XXXXX.png`` (``XXXXX`` = the manifest's k), a
  ``protocol.json`` (data set, protocol, frame rates, eq. 7 blur, the expected output files, and
  ``inputs_sha256``, a hash of the inputs' pixels) and a ``README.txt``. Which inputs are blurry is
  *not* exported: under ``mixed`` a method must tell for itself (the paper's setting); the scorer
  keeps the manifest's flags for the sharp / blurry breakdown.
* The outputs folder holds ``<clip>/deblur_XXXXX.png`` (input k deblurred) and
  ``<clip>/interp_XXXXX.png`` (the frame between inputs k and k+1), RGB uint8 at the inputs' size,
  and the export's ``protocol.json`` (or the export folder itself is used as the outputs folder).
* :func:`evaluate_folder` checks it all before scoring anything (only folders and regular files in
  the outputs folder, no symlink, so what is hashed and scored is the submission's own bytes;
  protocol.json's hash against the inputs prepared now; nothing that signals a misaligned
  submission: no unknown clip folder, no image outside the expected set, be it a frame past the
  last input or a JPEG; every expected file present; PNG headers read byte by byte, since PIL
  opens a 16-bit RGB PNG as 8-bit "RGB": 8-bit RGB, the inputs' size), then feeds the frames to
  the one scoring path, ``alabench.evaluation.score_outputs``. Every error names the files and says what to do; stray
  files that are not images (notes.txt, Thumbs.db) are only warned about. The caller writes
  results only after it returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alabench.blur import read_manifest
from alabench.config import BlurParams, EvaluateParams
from alabench.datasets import TestClip, iter_test_clips
from alabench.errors import UserError
from alabench.evaluation import (
    ClipFrames,
    Scored,
    sample_positions,
    score_outputs,
    viewer_positions,
)
from alabench.frames import atomic_dir, read_png
from alabench.layout import MANIFEST, prepared_dir
from alabench.methods import ROUNDING
from alabench.metrics import Lpips
from alabench.summary import summarize
from alabench.vocabulary import KINDS, METRIC, METRICS

log = logging.getLogger(__name__)

FORMAT = "alabench-inputs/1"
PROTOCOL_FILE = "protocol.json"
SOURCE_FPS = 240  # every data set of the suite is a 240 fps capture (docs/pipeline.md, "Data layout")
NAMES = {"input": "input_{k:05d}.png", "deblur": "deblur_{k:05d}.png", "interp": "interp_{k:05d}.png"}
SHOWN = 5  # missing files named in an error
EXTRAS = {PROTOCOL_FILE, "README.txt"}  # what an export holds besides the inputs
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".exr", ".ppm"}
OUTPUT_NAME = re.compile(r"(deblur|interp)_(\d+)\.([A-Za-z0-9]+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOURS = {0: ("greyscale", 1), 2: ("RGB", 3), 3: ("palette", 1), 4: ("greyscale+alpha", 2), 6: ("RGBA", 4)}


class SubmissionError(UserError, ValueError):
    """An export or a folder of outputs that cannot be used; names the file and what to do."""


@dataclass(frozen=True)
class PreparedInputs:
    """The inputs of one prepared protocol, as exported and as the outputs must match them."""

    dataset: str
    protocol: str
    files: dict[str, list[Path]]  # clip -> its input PNGs, k = 0, 1, ...
    sizes: dict[str, tuple[int, int]]  # clip -> (height, width)
    sha256: str  # over every input's name, size and RGB pixels, in manifest order

    def expected(self) -> list[tuple[str, str, tuple[int, int]]]:
        """(clip, file name, (height, width)) of every output the folder must hold."""
        out = []
        for clip, inputs in self.files.items():
            out += [(clip, NAMES["deblur"].format(k=k), self.sizes[clip]) for k in range(len(inputs))]
            out += [(clip, NAMES["interp"].format(k=k), self.sizes[clip]) for k in range(len(inputs) - 1)]
        return out


def read_inputs(root: Path, dataset: str, protocol: str) -> PreparedInputs:
    """Read a prepared protocol's inputs and hash their pixels (not their PNG bytes, which depend on
    the encoder: the same pixels always give the same hash)."""
    manifest = prepared_dir(dataset, protocol, root) / MANIFEST
    rows = read_manifest(manifest)
    files: dict[str, list[Path]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: (r["clip"], int(r["k"]))):
        clip, k = row["clip"], int(row["k"])
        if k != len(files.setdefault(clip, [])):
            raise SubmissionError(f"{manifest}: clip {clip} has no "
                                  f"input {len(files[clip])}; re-run the blur stage")
        pixels = read_png(Path(root) / row["input"])
        sizes.setdefault(clip, pixels.shape[:2])
        files[clip].append(Path(root) / row["input"])
        digest.update(f"{clip}/{NAMES['input'].format(k=k)} {pixels.shape[0]} {pixels.shape[1]}\n".encode())
        digest.update(pixels.tobytes())
    return PreparedInputs(dataset, protocol, files, sizes, digest.hexdigest())


# --------------------------------------------------------------------------------------------
# Export.


def describe(inputs: PreparedInputs, blur: BlurParams) -> dict[str, Any]:
    """The protocol.json of an export: what the inputs are and what a method must write back."""
    input_fps = SOURCE_FPS / blur.stride
    return {
        "format": FORMAT,
        "dataset": inputs.dataset,
        "protocol": inputs.protocol,
        "inputs_sha256": inputs.sha256,
        "inputs_sha256_covers": "for each input in clip then k order: '<clip>/input_XXXXX.png <height> <width>\\n', "
                                "then its RGB uint8 pixels, row-major",
        "frame_rates": {"source": SOURCE_FPS, "input": input_fps, "output": 2 * input_fps},
        "blur": {
            "model": "paper eq. 7: a blurry input is the mean of `window` consecutive sharp frames centred on "
                     "input k's sharp frame c_k = window // 2 + stride * k; a sharp input is frame c_k itself",
            "window": blur.window, "stride": blur.stride, "rounding": blur.rounding,
            "p_blur": 1.0 if inputs.protocol == "all_blurry" else blur.p_blur,
            "which_inputs_are_blurry": "not given: the method must cope with sharp and blurry inputs alike; "
                                       "the scorer keeps its own record for the sharp / blurry breakdown",
        },
        "targets": {"deblur": "sharp frame c_k", "interp": "sharp frame c_k + stride / 2, midway between inputs "
                                                           "k and k+1 (60 fps output with the 30 fps inputs)"},
        "files": {**NAMES, "format": "RGB PNG, 8 bits per channel, the size of the inputs",
                  "rounding": f"float frames in [0, 1] become uint8 as the pipeline's own outputs do: {ROUNDING} "
                              "(round half to even)",
                  "nothing_else": "no other clip folders and no other images: they are refused as a misaligned "
                                  "submission"},
        "clips": [{"name": clip, "inputs": len(paths), "deblur": len(paths), "interp": len(paths) - 1,
                   "height": inputs.sizes[clip][0], "width": inputs.sizes[clip][1]}
                  for clip, paths in inputs.files.items()],
    }


README = """\
Test inputs of the alabench data set '{dataset}' under the protocol '{protocol}'
({clips} clips, {inputs} inputs at {input_fps:g} fps). protocol.json says how they were made.

Run your method on every clip and write, into a folder of your choice (this one will do):

  <clip>/deblur_XXXXX.png   input_XXXXX.png deblurred (or kept, if it was sharp)      {deblur} files
  <clip>/interp_XXXXX.png   the frame midway between input_XXXXX and the next input  {interp} files

as 8-bit RGB PNG, the size of the inputs, and copy protocol.json into that folder: the scorer
checks its inputs_sha256 against the inputs it has, so outputs made for another data set or
protocol are refused. Which inputs are blurry is not given: a method must tell for itself.
For the last input of a clip there is no interp file. Write nothing else: another clip folder or
an image outside these names (a JPEG, a frame past the last one) is refused. Float frames in
[0, 1] become uint8 as the pipeline's own are: {rounding}.

Then, in the alabench repository that exported this folder:

  python -m stages.score <your folder> --dataset {dataset} --protocol {protocol} --method <name>

prints the deblur / interp / joint table and writes outside/{dataset}/{protocol}/<name>/ (not
tracked by git or DVC), which the report shows marked "scored by hand" (docs/outside-results.md).
"""


def export_inputs(inputs: PreparedInputs, blur: BlurParams, out: Path) -> None:
    """``out``/<clip>/input_XXXXX.png, protocol.json and README.txt, written whole or not at all.
    Refuses a folder that exists and is not empty (it may hold someone's outputs)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SubmissionError(f"{out}: already exists and is not empty; export into a new folder "
                              "(or delete this one first)")
    description = describe(inputs, blur)
    with atomic_dir(out) as tmp:
        for clip, paths in inputs.files.items():
            (tmp / clip).mkdir()
            for k, path in enumerate(paths):
                shutil.copyfile(path, tmp / clip / NAMES["input"].format(k=k))
        (tmp / PROTOCOL_FILE).write_text(json.dumps(description, indent=2) + "\n")
        frames = sum(len(p) for p in inputs.files.values())
        (tmp / "README.txt").write_text(README.format(
            dataset=inputs.dataset, protocol=inputs.protocol, clips=len(inputs.files), inputs=frames,
            input_fps=description["frame_rates"]["input"], deblur=frames, interp=frames - len(inputs.files),
            rounding=ROUNDING))


# --------------------------------------------------------------------------------------------
# A folder of outputs.


def check_protocol(folder: Path, inputs: PreparedInputs) -> None:
    """The folder's protocol.json must name these inputs: same data set, protocol and pixel hash."""
    path = Path(folder) / PROTOCOL_FILE
    if Path(folder).is_file():
        raise SubmissionError(f"{folder}: a file, not a folder; pass the folder that holds <clip>/deblur_XXXXX.png, "
                              "<clip>/interp_XXXXX.png and protocol.json")
    if not Path(folder).is_dir():
        raise SubmissionError(f"{folder}: folder of outputs not found")
    check_regular(folder)
    try:
        made_for = json.loads(path.read_text())
        made_for["inputs_sha256"]
    except FileNotFoundError:
        raise SubmissionError(f"{path}: missing; copy the protocol.json that `python -m stages.export_inputs` wrote "
                              "beside the inputs into the outputs folder (it says which inputs they were made "
                              "from)") from None
    except (ValueError, TypeError, KeyError):
        raise SubmissionError(f"{path}: not a protocol.json written by `python -m stages.export_inputs`; copy "
                              "the export's own file here") from None
    where = f"{inputs.dataset}/{inputs.protocol}"
    theirs = f"{made_for.get('dataset')}/{made_for.get('protocol')}"
    if theirs != where:
        raise SubmissionError(f"{folder}: these outputs were made for {theirs} (its protocol.json), not {where}; "
                              f"score them as {theirs}, or export {where} and run the method on those inputs")
    if made_for["inputs_sha256"] != inputs.sha256:
        raise SubmissionError(f"{folder}: these outputs were made from other inputs than {where} holds now "
                              f"(protocol.json: inputs_sha256 {str(made_for['inputs_sha256'])[:12]}…, the prepared "
                              f"inputs: {inputs.sha256[:12]}…), e.g. before a change of the blur params; export "
                              "again and run the method on the new inputs")


def check_regular(folder: Path) -> None:
    """Refuse every symlink (to a file or a folder, pointing anywhere) and every entry that is neither a
    folder nor a regular file (a FIFO would hang the reader), naming each: what is scored must be the
    bytes inside the submission, not a file elsewhere that the submission points to and that may
    change after its hash was taken."""
    links, others = [], []
    for path in sorted(Path(folder).rglob("*")):  # rglob lists a symlinked folder but does not descend into it
        mode = path.lstat().st_mode
        rel = path.relative_to(folder).as_posix()
        if stat.S_ISLNK(mode):
            links.append(rel + ("/" if path.is_dir() else ""))
        elif not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            others.append(rel)
    if links:
        raise SubmissionError(f"{folder}: {len(links)} symbolic link(s): {_listed(links)}; the scorer reads only "
                              "regular files inside the outputs folder: copy the files themselves in (e.g. "
                              "`cp -rL`) and score again")
    if others:
        raise SubmissionError(f"{folder}: {len(others)} entry(ies) that are neither folders nor regular files: "
                              f"{_listed(others)}; remove them and score again")


def _size_error(path: Path, found: tuple[int, int], clip: str, size: tuple[int, int]) -> SubmissionError:
    return SubmissionError(f"{path}: {found[1]}x{found[0]} pixels, but the inputs of clip {clip} are "
                           f"{size[1]}x{size[0]}; write every output at the inputs' size")


def _listed(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _why_unexpected(rel: str, inputs: PreparedInputs) -> str:
    """Why an image file is not one of the expected outputs, for the error that names it."""
    clip, _, name = rel.rpartition("/")
    match = OUTPUT_NAME.fullmatch(name)
    if clip not in inputs.files:
        return f"{rel} (outside any clip folder)"
    if match is None:
        return f"{rel} (not an output name)"
    kind, suffix, count = match.group(1), match.group(3), len(inputs.files[clip])
    if suffix != "png":
        return f"{rel} (a .{suffix} file: only PNG is scored)"
    last = count - 1 if kind == "deblur" else count - 2
    return f"{rel} (clip {clip} has {kind}_00000 to {kind}_{last:05d})"


def check_layout(folder: Path, inputs: PreparedInputs) -> list[str]:
    """Refuse what signals a misaligned submission: clip folders the inputs do not have, and images
    that are not expected outputs (a frame past the last input, a JPEG, a misplaced frame), naming
    each. Returns the other stray files (notes, Thumbs.db): ignored, for a warning."""
    expected = {f"{clip}/{name}" for clip, name, _ in inputs.expected()}
    expected |= {f"{clip}/{NAMES['input'].format(k=k)}" for clip, paths in inputs.files.items()
                 for k in range(len(paths))} | EXTRAS  # an export used as the outputs folder
    unknown, images, strays = [], [], []
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_dir():
            if "/" not in rel and rel not in inputs.files:
                unknown.append(f"{rel}/")
        elif rel not in expected and not any(rel.startswith(u) for u in unknown):
            (images if path.suffix.lower() in IMAGE_SUFFIXES else strays).append(rel)
    if unknown:
        raise SubmissionError(f"{folder}: unknown clip folder(s) {_listed(unknown)} (the inputs of "
                              f"{inputs.dataset}/{inputs.protocol} are clips {_listed(list(inputs.files))}); "
                              "outputs for other clips mean a misaligned submission: remove them, or score them "
                              "against the data set they were made for")
    if images:
        raise SubmissionError(f"{folder}: {len(images)} image file(s) that are not expected outputs: "
                              f"{_listed([_why_unexpected(rel, inputs) for rel in images])}; they signal a misaligned "
                              "submission: rename or remove them (protocol.json lists the expected files: "
                              "<clip>/deblur_XXXXX.png, <clip>/interp_XXXXX.png, 8-bit RGB PNG)")
    return strays


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(height, width, bit depth, colour type) from a PNG's IHDR chunk; read from the bytes, since
    PIL opens a 16-bit RGB PNG as 8-bit "RGB" and would hide its depth."""
    with open(path, "rb") as f:
        head = f.read(29)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
        return height, width, depth, colour
    try:
        with Image.open(path) as img:
            kind = img.format
    except Exception as err:  # PIL raises several types for a broken file
        raise SubmissionError(f"{path}: cannot read this PNG ({err}); write it again as an 8-bit RGB PNG") from None
    raise SubmissionError(f"{path}: a {kind} image, not a PNG (only its name says .png); write an 8-bit RGB PNG")


def check_files(folder: Path, inputs: PreparedInputs) -> str:
    """Nothing misaligned (:func:`check_layout`), every expected output present, an 8-bit RGB PNG of
    the inputs' size (headers only: cheap, before any scoring); returns the sha256 of the outputs
    (their names and bytes), which identifies them."""
    folder = Path(folder)
    strays = check_layout(folder, inputs)
    if strays:
        log.warning("%s: ignored, not outputs: %s", folder, _listed(strays))
    expected = inputs.expected()
    missing = [f"{clip}/{name}" for clip, name, _ in expected if not (folder / clip / name).is_file()]
    if missing:
        raise SubmissionError(
            f"{folder}: {len(missing)} of {len(expected)} output frames are missing: "
            f"{', '.join(missing[:SHOWN])}{', …' if len(missing) > SHOWN else ''}; write <clip>/deblur_XXXXX.png "
            "for every input and <clip>/interp_XXXXX.png between inputs XXXXX and XXXXX+1 (see protocol.json)")
    digest = hashlib.sha256()
    for clip, name, size in expected:
        path = folder / clip / name
        height, width, depth, colour = png_header(path)
        if (depth, colour) != (8, 2):
            kind, channels = PNG_COLOURS.get(colour, (f"colour type {colour}", 0))
            article = "an" if depth == 8 else "a"
            raise SubmissionError(f"{path}: {article} {depth}-bit {kind} PNG ({channels} channel(s)); write an "
                                  f"8-bit RGB PNG (3 channels, no alpha; float frames in [0, 1] rounded as {ROUNDING})")
        if (height, width) != size:
            raise _size_error(path, (height, width), clip, size)
        digest.update(f"{clip}/{name}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def folder_outputs(folder: Path, clips: Iterable[TestClip]) -> Iterator[ClipFrames]:
    """Each clip's outputs read from ``folder`` one PNG at a time (a full decode: a PNG broken past
    its header fails here)."""
    for clip in clips:
        yield ClipFrames(clip, _read_outputs(Path(folder), clip))


def _read_outputs(folder: Path, clip: TestClip) -> Iterator[tuple[str, int, np.ndarray]]:
    size = clip.inputs[0].shape
    for kind, count in (("deblur", len(clip.inputs)), ("interp", len(clip.inputs) - 1)):
        for k in range(count):
            path = folder / clip.name / NAMES[kind].format(k=k)
            frame = read_png(path)
            if frame.shape != size:
                raise _size_error(path, frame.shape[:2], clip.name, size[:2])
            yield kind, k, frame


def evaluate_folder(folder: Path, dataset: str, protocol: str, cfg: EvaluateParams, lpips: Lpips,
                    summary: dict[str, Any], root: Path = Path(".")) -> Scored:
    """Check a folder of outputs against ``dataset``/``protocol``'s prepared inputs, score it as any
    method is scored, and fill ``summary`` (``outputs_supplied``: the folder and its hash)."""
    inputs = read_inputs(root, dataset, protocol)
    check_protocol(Path(root) / folder, inputs)
    sha256 = check_files(Path(root) / folder, inputs)
    summary.update(tasks=["deblur", "interpolate"], trains=False, description=f"outputs supplied: {folder}",
                   options={}, outputs_supplied={"path": str(folder), "sha256": sha256})
    names, lengths = list(inputs.files), [len(p) for p in inputs.files.values()]
    positions = sample_positions(names, lengths, cfg.samples) | viewer_positions(names, lengths, cfg.viewer_clips)
    clips = iter_test_clips(prepared_dir(dataset, protocol, root), root)
    scored = score_outputs(folder_outputs(Path(root) / folder, clips), lpips, positions)
    summary.update(summarize(scored.frames, cfg.psnr_cap, cfg.bootstrap, cfg.confidence, cfg.seed))
    return scored


# --------------------------------------------------------------------------------------------
# The printed table.


def summary_table(summary: dict[str, Any], convention: str) -> str:
    """The deblur / interp / joint rows of a summary.json in ``convention`` (the protocol's headline,
    ``alabench.vocabulary.headline_convention``, as on the report's page): means with their intervals."""
    boot = summary["bootstrap"]
    lines = [f"{summary['method']} on {summary['dataset']}/{summary['protocol']}: {summary['clips']} clips; "
             f"{convention} means [{boot['confidence']:.0%} bootstrap interval over units]; PSNR capped at "
             f"{summary['psnr_cap']:g} dB ({summary['psnr_capped']['joint']} frames capped)",
             f"{'kind':<8}{'frames':>7}  " + "".join(f"{METRIC[m].label:<26}" for m in METRICS).rstrip()]
    for kind in KINDS:
        cells = []
        for metric in METRICS:
            cell, fmt = summary["averages"][convention][kind][metric], METRIC[metric].format
            lo, hi = cell["ci"]
            interval = f" [{fmt(lo)}, {fmt(hi)}]" if lo is not None else ""
            cells.append(f"{fmt(cell['mean'])}{interval}")
        lines.append(f"{kind:<8}{summary['frames'][kind]:>7}  " + "".join(f"{c:<26}" for c in cells).rstrip())
    supplied = summary.get("outputs_supplied")
    if supplied:
        lines.append(f"outputs supplied: {supplied['path']} (sha256 {supplied['sha256']})")
    return "\n".join(lines)
