"""The embedded 240 fps data set: clips rendered from real photographs (alabench.sources.photos).

Each clip is a camera moving smoothly over a background photo (translation whose velocity turns
and changes speed, plus a steady rotation and zoom) with 1-3 foreground layers, each with a soft
mask and a motion of its own. Every frame is sampled at sub-pixel positions with cubic B-spline
interpolation from photos that were resized with an antialiasing filter, so averaging consecutive
frames (paper eq. 7) gives a smooth, real-looking motion blur, including the mixed pixels where a
layer moves over the background.

Photos are split by source scene (``synth.test_photos``). A training clip cuts its layers from
*other* photos of its split, for variety; a test clip cuts them from its own photo, so that it
depends on that one photo alone: the photo is the independent test unit, and test clip ``i`` has
photo ``i mod n`` as background, so every test photo gets clips once there are as many clips as
photos. ``videos.csv`` names each clip's photo (``photo:<source>``) for the statistics.

Everything is drawn from a generator seeded by ``(seed, split, clip index)``: the same params give
the same bytes, and one clip does not depend on how many others are rendered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.transform import rescale

from alabench.config import SplitSize, SynthParams
from alabench.frames import atomic_write_text, frame_name, write_png
from alabench.parallel import executor
from alabench.progress import progress
from alabench.sources.photos import SOURCES, load_photo

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


def split_sources(test_photos: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Photo sources per split; no source is in both."""
    return {"train": tuple(s for s in SOURCES if s not in test_photos), "test": tuple(test_photos)}


@dataclass(frozen=True)
class _Sprite:
    """A prefiltered image and how output pixels map onto it over time."""

    coeffs: np.ndarray  # (C, h, w) cubic B-spline coefficients (colour, or premultiplied colour + alpha)
    centre: np.ndarray  # (T, 2) position in output pixels (y, x) of the image point ``anchor``
    anchor: np.ndarray  # (2,) point of the image (y, x) that follows ``centre``
    angle: np.ndarray  # (T,) radians
    log_scale: np.ndarray  # (T,) output px per image px = exp(log_scale)
    mode: str  # outside the image: "mirror" for a background, "grid-constant" (zero) for a layer

    def sample(self, t: int, grid: np.ndarray) -> np.ndarray:
        """Sample every channel at output pixel grid (2, H, W) for frame ``t`` -> (C, H, W)."""
        c, s = np.cos(self.angle[t]), np.sin(self.angle[t])
        d = (grid - self.centre[t][:, None, None]) * np.exp(-self.log_scale[t])
        src_y = self.anchor[0] + c * d[0] + s * d[1]
        src_x = self.anchor[1] - s * d[0] + c * d[1]
        coords = np.stack([src_y, src_x])
        return np.stack([ndimage.map_coordinates(ch, coords, order=3, mode=self.mode, prefilter=False)
                         for ch in self.coeffs])

    def footprint(self, t: int, height: int, width: int) -> tuple[slice, slice]:
        """The output rows and columns the image can touch at frame ``t`` (spline support included)."""
        h, w = self.coeffs.shape[1:]
        corners = np.array([[0, 0], [0, w], [h, 0], [h, w]], dtype=float) - self.anchor
        c, s = np.cos(self.angle[t]), np.sin(self.angle[t])
        rot = np.array([[c, -s], [s, c]])  # inverse of the rotation in ``sample``
        out = self.centre[t] + np.exp(self.log_scale[t]) * corners @ rot.T
        lo = np.floor(out.min(axis=0)).astype(int) - 2
        hi = np.ceil(out.max(axis=0)).astype(int) + 3
        return slice(max(lo[0], 0), min(hi[0], height)), slice(max(lo[1], 0), min(hi[1], width))


def _spline(image_chw: np.ndarray, mode: str) -> np.ndarray:
    return np.stack([ndimage.spline_filter(ch, order=3, mode=mode) for ch in image_chw]).astype(np.float32)


def _smooth_path(rng: np.random.Generator, frames: int, speed: tuple[float, float]) -> np.ndarray:
    """(T, 2) positions whose velocity turns and changes speed smoothly between two random draws."""
    def velocity() -> np.ndarray:
        angle = rng.uniform(0, 2 * np.pi)
        return rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])

    v0, v1 = velocity(), velocity()
    u = np.linspace(0.0, 1.0, frames)[:, None]
    w = u * u * (3 - 2 * u)  # smoothstep
    v = (1 - w) * v0 + w * v1
    return np.concatenate([np.zeros((1, 2)), np.cumsum(v[:-1], axis=0)])


def _pick_view(rng: np.random.Generator, source: str) -> np.ndarray:
    """One view of a source photo; grey photos get a random colour cast so they are not all neutral."""
    photo = load_photo(source)
    image = photo.views[rng.integers(len(photo.views))]
    return image * rng.uniform(0.55, 1.0, size=3).astype(np.float32) if photo.grey else image


def _soft_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random blob with a feathered edge, (h, w) in [0, 1]: an ellipse whose radius wobbles."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ry, rx = 0.5 * h * rng.uniform(0.75, 0.95), 0.5 * w * rng.uniform(0.75, 0.95)
    theta = np.arctan2((yy - cy) / ry, (xx - cx) / rx)
    wobble = 1.0 + sum(rng.uniform(-0.08, 0.08) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
                       for k in range(2, 6))
    radius = np.hypot((yy - cy) / ry, (xx - cx) / rx) / wobble
    edge = rng.uniform(0.04, 0.12)  # feather width as a share of the radius
    return np.clip((1.0 - radius) / edge + 0.5, 0.0, 1.0)


def _background(rng: np.random.Generator, source: str, cfg: SynthParams, frames: int) -> _Sprite:
    image = _pick_view(rng, source)
    path = _smooth_path(rng, frames, cfg.speed)
    angle = np.deg2rad(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)) * np.arange(frames)
    log_scale = rng.uniform(-cfg.max_zoom, cfg.max_zoom) * np.arange(frames)
    # Resize once (antialiased) so that the whole camera path fits inside the photo and a frame
    # shows at most 40-75 % of its height; frames are then sampled near 1:1.
    travel = path.max(axis=0) - path.min(axis=0)
    view = np.hypot(cfg.width, cfg.height) * np.exp(np.abs(log_scale).max()) + 4
    need = max((travel[0] + view) / image.shape[0], (travel[1] + view) / image.shape[1])
    factor = max(need, cfg.height / (rng.uniform(0.4, 0.75) * image.shape[0]))
    image = rescale(image, factor, anti_aliasing=factor < 1, channel_axis=2, order=3).astype(np.float32)
    centre_out = np.array([(cfg.height - 1) / 2, (cfg.width - 1) / 2])
    anchor = np.array(image.shape[:2], dtype=float) / 2 - (path.min(axis=0) + travel / 2)
    # The camera moves over the photo = the photo moves the opposite way in the frame.
    return _Sprite(_spline(np.clip(image, 0, 1).transpose(2, 0, 1), "mirror"), centre_out - path,
                   anchor, -angle, -log_scale, "mirror")


def _layer(rng: np.random.Generator, source: str, cfg: SynthParams, frames: int) -> _Sprite:
    image = _pick_view(rng, source)
    short = min(cfg.width, cfg.height)
    h = int(round(short * rng.uniform(*cfg.layer_size) * rng.uniform(0.8, 1.25)))
    w = int(round(short * rng.uniform(*cfg.layer_size) * rng.uniform(0.8, 1.25)))
    h, w = max(h, 8), max(w, 8)
    # Cut a patch showing 25-60 % of the photo's shorter side, resized (antialiased) to h x w.
    side = rng.uniform(0.25, 0.6) * min(image.shape[:2])
    factor = max(h, w) / side
    small = rescale(image, factor, anti_aliasing=factor < 1, channel_axis=2, order=3).astype(np.float32)
    y0 = rng.integers(0, max(small.shape[0] - h, 0) + 1)
    x0 = rng.integers(0, max(small.shape[1] - w, 0) + 1)
    patch = np.clip(small[y0:y0 + h, x0:x0 + w], 0, 1)
    h, w = patch.shape[:2]
    alpha = _soft_mask(rng, h, w)
    pad = 3  # transparent border so that the spline sees zero alpha outside the blob
    rgba = np.pad(np.concatenate([patch * alpha[..., None], alpha[..., None]], axis=2),
                  ((pad, pad), (pad, pad), (0, 0)))
    path = _smooth_path(rng, frames, cfg.layer_speed)
    mid = np.array([rng.uniform(0.2, 0.8) * cfg.height, rng.uniform(0.2, 0.8) * cfg.width])
    centre = mid + path - path[frames // 2]
    angle = np.deg2rad(rng.uniform(-4, 4) * cfg.max_rotation_deg) * np.arange(frames)
    log_scale = rng.uniform(-2, 2) * cfg.max_zoom * np.arange(frames)
    anchor = np.array([(h - 1) / 2 + pad, (w - 1) / 2 + pad])
    return _Sprite(_spline(rgba.transpose(2, 0, 1), "grid-constant"), centre, anchor, angle, log_scale,
                   "grid-constant")


@dataclass(frozen=True)
class RenderedClip:
    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    background: str  # photo source of the background
    layers: tuple[str, ...]  # photo source of each foreground layer


def background_photo(cfg: SynthParams, split: str, index: int) -> str:
    """The photo behind clip ``index`` of ``split``: the split's photos in turn, so ``n`` clips cover
    ``n`` photos (on the test split, clip ``index``'s test unit)."""
    sources = split_sources(cfg.test_photos)[split]
    return sources[index % len(sources)]


def render_clip(cfg: SynthParams, split: str, index: int, frames: int) -> RenderedClip:
    """Render clip ``index`` of ``split``."""
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index])
    sources = split_sources(cfg.test_photos)[split]
    bg_source = background_photo(cfg, split, index)
    background = _background(rng, bg_source, cfg, frames)
    # test: layers from the clip's own photo (it depends on its test unit alone); train: from other photos
    others = [bg_source] if split == "test" else [s for s in sources if s != bg_source]
    count = int(rng.integers(cfg.layers[0], cfg.layers[1] + 1))
    layer_sources = tuple(others[rng.integers(len(others))] for _ in range(count))
    layers = [_layer(rng, source, cfg, frames) for source in layer_sources]
    grid = np.mgrid[0:cfg.height, 0:cfg.width].astype(np.float64)
    out = np.empty((frames, cfg.height, cfg.width, 3), dtype=np.uint8)
    for t in range(frames):
        image = background.sample(t, grid)
        for layer in layers:
            rows, cols = layer.footprint(t, cfg.height, cfg.width)
            if rows.start >= rows.stop or cols.start >= cols.stop:
                continue  # the layer is outside the frame at this instant
            rgba = layer.sample(t, grid[:, rows, cols])
            alpha = np.clip(rgba[3], 0.0, 1.0)
            image[:, rows, cols] = rgba[:3] + (1.0 - alpha) * image[:, rows, cols]  # premultiplied "over"
        out[t] = np.round(np.clip(image, 0.0, 1.0) * 255.0).transpose(1, 2, 0).astype(np.uint8)
    return RenderedClip(f"{index:03d}_{bg_source}", out, bg_source, layer_sources)


UNITS_CSV = "videos.csv"  # alabench.blur.VIDEO_MAP, which the blur stage reads (not imported: not a dep of synth)


def photo_unit(source: str) -> str:
    """The test unit of a clip rendered over photo ``source`` (its id in videos.csv and frames.csv)."""
    return f"photo:{source}"


def _render_and_write(job: tuple[SynthParams, str, int, int, Path]) -> tuple[str, str, str]:
    """Render and write one clip; returns its name, its background photo and its clips.csv row."""
    cfg, split, index, frames, split_dir = job
    clip = render_clip(cfg, split, index, frames)
    for t, frame in enumerate(clip.frames):
        write_png(split_dir / clip.name / frame_name(t), frame, cfg.png_compression)
    return clip.name, clip.background, f"{split},{clip.name},{clip.background},{' '.join(clip.layers)}\n"


def write_dataset(cfg: SynthParams, out_dir: Path) -> None:
    """Render every clip of both splits into ``out_dir/<split>/<clip>/%05d.png``, plus
    ``out_dir/clips.csv`` naming the photo behind each clip's background and layers and
    ``out_dir/videos.csv`` the test unit of each clip: its background photo."""
    sizes: dict[str, SplitSize] = {"train": cfg.train, "test": cfg.test}
    jobs = [(cfg, split, i, sizes[split].frames, Path(out_dir) / split)
            for split in SPLITS for i in range(sizes[split].clips)]
    log.info("rendering %d clips (%s) at %dx%d with %d worker(s)", len(jobs),
             ", ".join(f"{s}: {sizes[s].clips} x {sizes[s].frames} frames" for s in SPLITS),
             cfg.width, cfg.height, cfg.workers)
    if cfg.test.clips < len(cfg.test_photos):
        log.warning("synth.test.clips = %d covers %d of the %d synth.test_photos: the test units are the photos, "
                    "raise it to at least %d", cfg.test.clips, cfg.test.clips, len(cfg.test_photos),
                    len(cfg.test_photos))
    with executor(cfg.workers) as pool:
        clips = list(progress(pool.map(_render_and_write, jobs), total=len(jobs), desc="synth", unit="clip"))
    atomic_write_text(Path(out_dir) / "clips.csv", "split,clip,background,layers\n" + "".join(row for *_, row in clips))
    atomic_write_text(Path(out_dir) / UNITS_CSV, "clip,video\n" + "".join(
        f"{name},{photo_unit(background)}\n" for name, background, _ in sorted(clips)))

