"""Containers for labelled image sets and pairs of domains."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import check_labels, describe
from .images import check_images


@dataclass(frozen=True)
class ImageDomain:
    """A labelled image set: ``x`` uint8 ``(N, C, H, W)``, ``y`` int64 ``(N,)`` with codes into ``classes``."""

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        x = check_images(self.x, f"{self.name}.x", min_images=0)
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            raise TypeError(f"{self.name}.x: expected a uint8 numpy array, got {describe(self.x)}")
        y = check_labels(self.y, f"{self.name}.y", n=x.shape[0],
                         num_classes=len(self.classes) if self.classes else None)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.x.shape[1:])

    def subset(self, index, name: str | None = None) -> "ImageDomain":
        """The images at ``index`` (integer positions or a boolean mask), same classes."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"index: a boolean mask needs shape ({len(self)},), got {describe(index)}")
        elif index.dtype.kind not in "iu" or index.ndim != 1:
            raise TypeError(f"index: expected 1-D integer positions or a boolean mask, got {describe(index)}")
        elif index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise ValueError(f"index: positions must lie in [-{len(self)}, {len(self)}), got {describe(index)} "
                             f"with values in [{index.min()}, {index.max()}]")
        return ImageDomain(self.name if name is None else name, self.x[index], self.y[index], self.classes)

    def split(self, test_fraction: float = 0.2, *, seed: int = 0) -> tuple["ImageDomain", "ImageDomain"]:
        """Stratified random split into ``(train, test)``: each class puts ``round(test_fraction * n_c)``
        of its ``n_c`` images (at least one when ``n_c >= 2``) in test. Orders are kept; seeded."""
        f = float(test_fraction)
        if not 0.0 < f < 1.0:
            raise ValueError(f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}")
        rng = np.random.default_rng(seed)
        test = np.zeros(len(self), dtype=bool)
        for c in np.unique(self.y):
            members = np.flatnonzero(self.y == c)
            k = int(round(f * members.size))
            k = min(max(k, 1 if members.size >= 2 else 0), members.size - 1 if members.size >= 2 else 0)
            test[rng.choice(members, size=k, replace=False)] = True
        return self.subset(~test), self.subset(test)


@dataclass(frozen=True)
class DomainPair:
    """Two domains for adaptation, ``source`` -> ``target``; ``pair["name"]`` looks a domain up by name."""

    source: ImageDomain
    target: ImageDomain

    def __getitem__(self, name: str) -> ImageDomain:
        for d in (self.source, self.target):
            if d.name == name:
                return d
        raise KeyError(f"no domain named {name!r}; this pair holds {self.source.name!r} and {self.target.name!r}")

    def __getattr__(self, name: str) -> ImageDomain:
        if name.startswith("_") or name in ("source", "target"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def swapped(self) -> "DomainPair":
        """The same pair in the other direction (target -> source)."""
        return DomainPair(self.target, self.source)
