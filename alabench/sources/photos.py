"""The real photographs the embedded data set is rendered from, grouped by source scene.

A *source* is the unit of the train/test split and the independent test unit of the statistics
(``alabench.stats``): the two motorcycle views show one scene and ``cat`` is ``chelsea``, so each
scene appears once here and a split can never put one scene on both sides. Grey photos are
returned as grey; the renderer tints them so they add colour variety.

Every photo ships inside a Python package the project installs (pyproject.toml), so rendering
needs no network. Origin and licence of each (docs/datasets.md has the table):

* scikit-image's ``skimage.data`` (the first 18): public domain, CC0 or "no known copyright
  restrictions" as each loader's docstring states (``moon``, ``page`` and the Middlebury 2014
  ``motorcycle`` pair state none);
* ``grace_hopper``: matplotlib's ``mpl-data/sample_data/grace_hopper.jpg``, the U.S. Navy's
  official portrait of Grace M. Hopper (1984), a work of the U.S. federal government: public domain;
* ``china``, ``flower``: scikit-learn's ``sklearn/datasets/images`` (``load_sample_images``),
  CC BY 2.0 (Flickr users danielbuechele and vultilion, per that folder's README.txt);
* ``kodim23``: sporco's ``sporco/data``, Kodak PhotoCD image 23, released for unrestricted use;
* ``monarch``, ``sail``, ``tulips``: sporco's ``sporco/data``, the Waterloo BragZone colour set,
  free of copyright restrictions (sporco's ``data/README.rst``);
* ``ascent``: PyWavelets' ``pywt/data/ascent.npz``, derived from a public-domain photograph
  (``pywt.data.ascent``'s docstring).

Not used: sporco's ``barbara`` (attributed to Allen Gersho, licence not stated), PyWavelets'
``aero`` (origin not stated) and ``camera`` (scikit-image's ``camera``, the same photo).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from alabench.errors import UserError


class PhotoError(UserError):
    """A photo whose package is missing or whose file cannot be read; names the photo and the fix."""


@dataclass(frozen=True)
class Photo:
    source: str
    views: tuple[np.ndarray, ...]  # each (H, W, 3) float32 in [0, 1]
    grey: bool


def _colour(loader: Callable[[], np.ndarray]) -> Callable[[], tuple[np.ndarray, ...]]:
    return lambda: (loader(),)


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PhotoError(f"{package}/{relative}: the Python package {package}, which ships this photo of the "
                         "embedded data set, is not installed; run `make venv` (pyproject.toml lists it)")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _packaged(package: str, relative: str) -> Callable[[], tuple[np.ndarray, ...]]:
    """A photo file shipped inside ``package``: a JPEG / PNG, or a NumPy ``.npz`` holding ``data``."""
    def load() -> tuple[np.ndarray, ...]:
        path = _package_file(package, relative)
        try:
            if path.suffix == ".npz":
                with np.load(path) as npz:  # allow_pickle stays False: plain arrays only
                    return (npz["data"],)
            with Image.open(path) as image:
                return (np.asarray(image.convert("RGB")),)
        except (OSError, KeyError, ValueError) as err:
            raise PhotoError(f"{path}: cannot read this photo of the embedded data set ({err}); "
                             f"reinstall {package} (make clean-venv venv)") from None
    return load


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
    "grace_hopper": (_packaged("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), False),
    "china": (_packaged("sklearn", "datasets/images/china.jpg"), False),
    "flower": (_packaged("sklearn", "datasets/images/flower.jpg"), False),
    **{name: (_packaged("sporco", f"data/{name}.png"), False) for name in ("kodim23", "monarch", "sail", "tulips")},
    "ascent": (_packaged("pywt", "data/ascent.npz"), True),
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
