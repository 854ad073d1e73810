"""The real photographs that ship inside scikit-image, grouped by source scene.

A *source* is the unit of the train/test split: the two motorcycle views show one scene and
``cat`` is ``chelsea``, so each scene appears once here and a split can never put one scene on both
sides. Grey photos are returned as grey; the renderer tints them so they add colour variety.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from skimage import data


@dataclass(frozen=True)
class Photo:
    source: str
    views: tuple[np.ndarray, ...]  # each (H, W, 3) float32 in [0, 1]
    grey: bool


def _colour(loader: Callable[[], np.ndarray]) -> Callable[[], tuple[np.ndarray, ...]]:
    return lambda: (loader(),)


_LOADERS: dict[str, tuple[Callable[[], tuple[np.ndarray, ...]], bool]] = {
    "astronaut": (_colour(data.astronaut), False),
    "chelsea": (_colour(data.chelsea), False),
    "coffee": (_colour(data.coffee), False),
    "hubble_deep_field": (_colour(data.hubble_deep_field), False),
    "immunohistochemistry": (_colour(data.immunohistochemistry), False),
    "retina": (_colour(data.retina), False),
    "rocket": (_colour(data.rocket), False),
    "motorcycle": (lambda: data.stereo_motorcycle()[:2], False),
    **{name: (_colour(getattr(data, name)), True)
       for name in ("brick", "camera", "cell", "clock", "coins", "grass", "gravel", "moon", "page", "text")},
}

SOURCES: tuple[str, ...] = tuple(_LOADERS)


@cache
def load_photo(source: str) -> Photo:
    """Load one source scene as float32 RGB views (grey photos stacked to three equal channels)."""
    if source not in _LOADERS:
        raise KeyError(f"unknown photo '{source}'; known: {', '.join(SOURCES)}")
    loader, grey = _LOADERS[source]
    views = []
    for raw in loader():
        img = np.asarray(raw, dtype=np.float32) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        views.append(np.ascontiguousarray(img[:, :, :3]))
    return Photo(source, tuple(views), grey)
