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
