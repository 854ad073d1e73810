"""The page's figures (matplotlib, Agg: no display needed), each returned as PNG bytes or None when
there is nothing to draw: the Figure 4-style strip, the Figure 5-style residues, joint PSNR per test
unit, and the training curves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alabench.frames import read_png
from alabench.layout import histories
from alabench.report.probes import THRESHOLD
from alabench.report.results import Inputs, Result
from alabench.viewer import read_samples

Images = list[np.ndarray]


def _png(fig: Any) -> bytes:
    """A figure as PNG bytes (an asset beside the page, loaded lazily)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image(root: Path, rel: str) -> np.ndarray | None:
    path = root / rel
    return read_png(path) if path.is_file() else None


def _box(error: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``error`` over every size x size window (top-left corners), via an integral image."""
    s = np.pad(error.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]


def _pick(table: pd.DataFrame, clip: str, k: int, kind: str) -> pd.Series | None:
    hit = table[(table["clip"] == clip) & (table["k"] == k) & (table["kind"] == kind)]
    return hit.iloc[0] if len(hit) else None


def _strip_outputs(root: Path, tables: dict[str, pd.DataFrame], clip: str, k: int) -> dict[str, Images]:
    """Each method's deblurred and interpolated frame of (clip, k), where it saved both."""
    outputs = {}
    for method, table in tables.items():
        d, i = _pick(table, clip, k, "deblur"), _pick(table, clip, k, "interp")
        if d is None or i is None:
            continue
        images = [_image(root, d["output"]), _image(root, i["output"])]
        if all(x is not None for x in images):
            outputs[method] = images
    return outputs


def _strip_rows(root: Path, tables: dict[str, pd.DataFrame], zoom: int) -> tuple[list[tuple[str, Images]], list[str],
                                                                                   str] | None:
    """Figure 4's rows (label, images), column titles and clip: inputs with the missing frame faded, one
    row per method, the ground truth last; the crop is where the outputs disagree most with the GT."""
    first = next(iter(tables.values()))
    clip, k = first.iloc[0]["clip"], int(first.iloc[0]["k"])
    d0, i0 = _pick(first, clip, k, "deblur"), _pick(first, clip, k, "interp")
    if d0 is None or i0 is None:
        return None
    gt = [_image(root, d0["target"]), _image(root, i0["target"])]
    ins = [_image(root, n) for n in str(i0["inputs"]).split()]
    if any(x is None for x in gt + ins) or len(ins) != 2:
        return None
    faded = (0.35 * (ins[0].astype(float) + ins[1]) / 2 + 0.65 * 255).astype(np.uint8)
    rows: list[tuple[str, Images]] = [(f"input {k}, missing, input {k + 1}", [ins[0], faded, ins[1]])]
    outputs = _strip_outputs(root, tables, clip, k)
    error = sum((np.abs(o[1].astype(float) - gt[1]).mean(-1) for o in outputs.values()), np.zeros(gt[1].shape[:2]))
    size = min(zoom, *error.shape)
    y, x = np.unravel_index(np.argmax(_box(error, size)), _box(error, size).shape)
    crop = (slice(y, y + size), slice(x, x + size))
    rows += [(method, [images[0], images[1], images[1][crop]]) for method, images in outputs.items()]
    rows.append(("ground truth", [gt[0], gt[1], gt[1][crop]]))
    titles = [f"frame {k} (deblurred)", f"frame {k}½ (interpolated)", f"zoom {size}×{size} px at ({x}, {y})"]
    return rows, titles, clip


def strip_figure(inputs: Inputs, root: Path, dataset: str, protocol: str, methods: list[str], zoom: int) -> bytes | None:
    """Figure 4 style: inputs with the missing frame faded, one row per method (deblurred, interpolated,
    zoomed crop), the ground truth last. The crop is where the methods' outputs disagree most with the GT."""
    plt = _pyplot()
    tables = {m: read_samples(r.folder) for m in methods if (r := inputs.ok(dataset, protocol, m))}
    tables = {m: t for m, t in tables.items() if not t.empty}
    strip = _strip_rows(root, tables, zoom) if tables else None
    if strip is None:
        return None
    rows, titles, clip = strip
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 2.2 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
            if r < 2:  # the inputs' titles above row 0, the outputs' above row 1
                ax.set_title(titles[c] if r else ["input (blurry or sharp)", "missing frame", "next input"][c],
                             fontsize=8)
        axes[r][0].text(-0.05, 0.5, label, transform=axes[r][0].transAxes, rotation=90, ha="right",
                        va="center", fontsize=8)
    fig.suptitle(f"{dataset} / {protocol}, clip {clip}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # keep 0.4 in on top for the title
    return _png(fig)


def _residue(root: Path, result: Result) -> tuple[np.ndarray, np.ndarray] | None:
    """A result's first saved interpolated frame and its |output - GT| (mean over RGB, 0-255 levels)."""
    table = read_samples(result.folder)
    hit = table[table["kind"] == "interp"]
    if hit.empty:
        return None
    out, gt = _image(root, hit.iloc[0]["output"]), _image(root, hit.iloc[0]["target"])
    if out is None or gt is None or out.shape != gt.shape:
        return None
    return out, np.abs(out.astype(float) - gt.astype(float)).mean(-1)


def residue_figure(inputs: Inputs, root: Path, dataset: str, protocol: str, methods: list[str],
                   vmax: float) -> bytes | None:
    """Figure 5 style: each method's interpolated frame above its |output - GT| (mean over RGB, 0-255
    levels) on one colour scale with its bar."""
    plt = _pyplot()
    shown = [(m, *drawn) for m in methods
             if (r := inputs.ok(dataset, protocol, m)) and (drawn := _residue(root, r))]
    if not shown:
        return None
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown) + 1, 5), squeeze=False)
    image = None
    for c, (method, out, residue) in enumerate(shown):
        axes[0][c].imshow(out)
        axes[0][c].set_title(f"{method}\nmean |error| {residue.mean():.2f}", fontsize=8)
        image = axes[1][c].imshow(residue, cmap="inferno", vmin=0, vmax=vmax)
        for ax in (axes[0][c], axes[1][c]):
            ax.axis("off")
    fig.colorbar(image, ax=list(axes[1]), label="|output − GT| (0–255)", fraction=0.05)
    fig.suptitle(f"{dataset} / {protocol}: interpolated frame and residue", fontsize=10)
    return _png(fig)


def per_clip_figure(inputs: Inputs, dataset: str, protocol: str, methods: list[str]) -> bytes | None:
    """Joint PSNR per test unit ((deblur + interp) / 2 under the protocol's convention, mean over
    seeds), one line per method: the values every paired comparison is made of."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    drawn = ""
    for method in methods:
        result = inputs.ok(dataset, protocol, method)
        scores = result.scores() if result else None
        if result is None or scores is None:
            continue
        joint = (scores.values(result.convention, "deblur", "psnr")
                 + scores.values(result.convention, "interp", "psnr")) / 2
        ax.plot(range(len(scores.units)), np.nanmean(joint, axis=0), marker="o", linestyle=":", label=method)
        ax.set_xticks(range(len(scores.units)), scores.units, rotation=30, ha="right", fontsize=7)
        drawn = result.convention
    if not drawn:
        plt.close(fig)
        return None
    ax.set_ylabel("joint PSNR (dB)")
    ax.set_title(f"{dataset} / {protocol}: joint PSNR per test unit ({drawn})", fontsize=10)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return _png(fig)


def training_figure(root: Path, dataset: str, recorded: bool = False) -> bytes | None:
    """Training loss and validation joint PSNR per epoch, every trained run of ``dataset`` whose
    checkpoint exists here (the histories are committed, the checkpoints may not have been made; every
    run with ``recorded``, for a run record under docs/runs/)."""
    plt = _pyplot()
    runs = list(histories(dataset, root, recorded))
    if not runs:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for method, seed, path in runs:
        history = pd.read_csv(path)
        if {"epoch", "train_loss"} <= set(history.columns):
            left.plot(history["epoch"], history["train_loss"], marker=".", label=f"{method} {seed}")
        if {"epoch", "joint_psnr"} <= set(history.columns):
            right.plot(history["epoch"], history["joint_psnr"], marker=".", label=f"{method} {seed}")
    left.set(xlabel="epoch", ylabel="training loss")
    right.set(xlabel="epoch", ylabel="validation joint PSNR (dB)")
    left.legend(fontsize=7)
    fig.suptitle(f"{dataset}: training", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def knockout_figure(root: Path, dataset: str, recorded: bool = False) -> bytes | None:
    """The validation cost of each knock-out a run tracked (``train.track_knockout``: the history's
    ``<knock-out>_cost_joint``) against training steps, one colour per method, one line style per seed:
    when a part starts to matter, if it does. Symmetric-log axis: a collapse does not flatten the rest."""
    runs = [(m, s, t) for m, s, path in histories(dataset, root, recorded)
            for t in [pd.read_csv(path)] if "step" in t and any(c.endswith("_cost_joint") for c in t.columns)]
    if not runs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    methods = sorted({m for m, _, _ in runs})
    styles = ["-", "--", ":", "-."]
    for method, seed, table in runs:
        for column in (c for c in table.columns if c.endswith("_cost_joint")):
            ax.plot(table["step"], table[column], marker=".", color=f"C{methods.index(method)}",
                    linestyle=styles[int(seed.removeprefix("seed") or 0) % len(styles)],
                    label=f"{method} {seed}, {column.removesuffix('_cost_joint')}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    for bar in (THRESHOLD, -THRESHOLD):
        ax.axhline(bar, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("symlog", linthresh=THRESHOLD)
    ax.set(xlabel="training step", ylabel="cost = intact - knocked out (dB)")
    ax.set_title(f"{dataset}: knock-out cost on validation, joint PSNR (dotted: ±{THRESHOLD} dB, the "
                 "probes' bar for a use)", fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _png(fig)
