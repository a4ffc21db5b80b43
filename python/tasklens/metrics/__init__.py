"""Transferability metrics: H-score (Def. 2), transferability (Def. 3), source selection (Def. 4),
higher-order transfer and the pixel-wise H-score (§5.2) of Bao et al. (ICLR 2019).

Ranking comparison and task clustering live in :mod:`tasklens.hgr`'s companion modules.
"""

from .hscore import HScoreAccumulator, hscore, hscore_from_state
from .transfer import rank_source_pairs, rank_sources, select_source, transferability
from .pixelwise import PixelwiseHScore, pixelwise_hscore, quantize_palette

__all__ = [
    "hscore",
    "HScoreAccumulator",
    "hscore_from_state",
    "transferability",
    "select_source",
    "rank_sources",
    "rank_source_pairs",
    "pixelwise_hscore",
    "PixelwiseHScore",
    "quantize_palette",
]
