"""Domain distances between datasets (Factors of Influence, Sect. 3.2 Eq. 1, Table 8) and their analysis
(Sect. 6: relative transfer gains, Tables 6-7, Kendall tau, Fig. 8 heatmaps)."""

from .a_distance import a_distance
from .distance import METHODS, METRICS, domain_distance, domain_distance_matrix, nearest
from .sampling import sample_datasets, sample_indices
from .analysis import (best_source_table, classify_gain, kendall_tau, plot_distance_heatmap,
                       relative_transfer_gain, transfer_table)

__all__ = ["a_distance", "domain_distance", "domain_distance_matrix", "nearest", "sample_indices", "sample_datasets",
           "METHODS", "METRICS", "relative_transfer_gain", "classify_gain", "transfer_table",
           "best_source_table", "kendall_tau", "plot_distance_heatmap"]
