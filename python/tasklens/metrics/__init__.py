"""Transferability metrics: H-score (Def. 2), transferability (Def. 3), source selection (Def. 4),
higher-order transfer and the pixel-wise H-score (§5.2) of Bao et al. (ICLR 2019).

Full-reference image quality for image translation (SSIM, MSE, PSNR; CDLM §4.3) is in :mod:`.image_quality`.

Ranking comparison (Spearman, Kendall tau-b, DCG/NDCG, top-k agreement) and task clustering from
H-score vectors (with a dendrogram plot) are in :mod:`.ranking` and :mod:`.clustering`; Taskonomy-style task-affinity normalisation in :mod:`.affinity`.
"""

from .hscore import HScoreAccumulator, hscore, hscore_from_state
from .transfer import rank_source_pairs, rank_sources, select_source, transferability
from .pixelwise import PixelwiseHScore, pixelwise_hscore, quantize_palette
from .ranking import dcg_score, kendall_tau, ndcg_score, rankdata, spearman, top_k_agreement
from .clustering import TaskClustering, cluster_tasks, plot_dendrogram
from .estimators import gbc, logme, sfda, transferability_report, transrate
from .leep import leep, nce, nleep
from .image_quality import mse, psnr, ssim
from .affinity import ahp_affinity, normalized_gain, win_rates
from .model_ranking import pearson, rank_models, relative_top_k_accuracy, weighted_kendall_tau

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
    "spearman",
    "kendall_tau",
    "dcg_score",
    "ndcg_score",
    "top_k_agreement",
    "rankdata",
    "cluster_tasks",
    "plot_dendrogram",
    "TaskClustering",
    "logme",
    "leep",
    "nce",
    "nleep",
    "transrate",
    "gbc",
    "sfda",
    "transferability_report",
    "rank_models",
    "weighted_kendall_tau",
    "pearson",
    "relative_top_k_accuracy",
    "ssim",
    "mse",
    "psnr",
    "win_rates",
    "ahp_affinity",
    "normalized_gain",
]
