"""Real-data validation of the H-score on scikit-learn's digits (the analogue of Fig. 4 of Bao et al., 2019).

Builds feature representations of different quality (PCA with 2-32 components, Gaussian random projections,
hidden layers of small MLPs trained on *another* label set, raw pixels), several target label sets, and for
each (representation, target) pair compares the H-score (and its Ledoit-Wolf regularized form) on the
training split with the test log-loss and accuracy of a logistic regression trained on that representation.
Prints Spearman correlations per target, and whether source selection by H-score (Def. 4) picks the
representation with the best test accuracy / log-loss.

Usage: python benchmarks/hscore_digits.py [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from tasklens.metrics import hscore, rank_sources  # noqa: E402


def targets_of(digit: np.ndarray) -> dict[str, np.ndarray]:
    loops = np.array([1, 0, 0, 0, 1, 0, 1, 0, 2, 1])  # closed loops drawn in each digit
    return {
        "digit (10)": digit,
        "parity (2)": digit % 2,
        "mod 3 (3)": digit % 3,
        ">= 5 (2)": (digit >= 5).astype(int),
        "loops (3)": loops[digit],
    }


def representations(x_train, x_all, digit_train, seed):
    """Feature maps fitted on the training split, applied to all samples."""
    from sklearn.decomposition import PCA
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(seed)
    reps = {}
    for k in (2, 4, 8, 16, 32):
        reps[f"pca{k}"] = PCA(k, random_state=seed).fit(x_train).transform(x_all)
    for k in (4, 16):
        reps[f"randproj{k}"] = x_all @ rng.normal(size=(x_all.shape[1], k))
    # Hidden layers of small networks trained on other label sets (source tasks).
    sources = {"mlp[>=5]": (digit_train >= 5).astype(int), "mlp[mod4]": digit_train % 4}
    for name, y_src in sources.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = MLPClassifier(hidden_layer_sizes=(24,), max_iter=600, random_state=seed).fit(x_train, y_src)
        reps[name] = np.maximum(x_all @ net.coefs_[0] + net.intercepts_[0], 0.0)
    reps["raw64"] = x_all.astype(np.float64)
    return reps


def evaluate(feat_train, y_train, feat_test, y_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(feat_train, y_train)
    proba = model.predict_proba(feat_test)
    return log_loss(y_test, proba, labels=model.classes_), accuracy_score(y_test, model.predict(feat_test))


def main(argv=None):
    from scipy.stats import spearmanr
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the per-pair table to this JSON file")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    x, digit = load_digits(return_X_y=True)
    idx_train, idx_test = train_test_split(np.arange(len(digit)), test_size=0.5, random_state=args.seed,
                                           stratify=digit)
    reps = representations(x[idx_train], x, digit[idx_train], args.seed)
    names = list(reps)
    rows, summary = [], []
    print(f"digits: {len(digit)} images, {len(idx_train)} train / {len(idx_test)} test; "
          f"{len(names)} representations: {', '.join(names)}")
    for tname, y in targets_of(digit).items():
        y_tr, y_te = y[idx_train], y[idx_test]
        h = np.array([hscore(reps[r][idx_train], y_tr) for r in names])
        h_lw = np.array([hscore(reps[r][idx_train], y_tr, shrinkage="ledoit-wolf") for r in names])
        perf = np.array([evaluate(reps[r][idx_train], y_tr, reps[r][idx_test], y_te) for r in names])
        loss, acc = perf[:, 0], perf[:, 1]
        picked = rank_sources({r: reps[r][idx_train] for r in names}, y_tr)[0][0]
        picked_lw = rank_sources({r: reps[r][idx_train] for r in names}, y_tr, shrinkage="ledoit-wolf")[0][0]
        best_acc, best_loss = names[int(np.argmax(acc))], names[int(np.argmin(loss))]
        s = {
            "target": tname,
            "spearman_h_vs_neg_logloss": float(spearmanr(h, -loss)[0]),
            "spearman_h_vs_accuracy": float(spearmanr(h, acc)[0]),
            "spearman_hlw_vs_neg_logloss": float(spearmanr(h_lw, -loss)[0]),
            "spearman_hlw_vs_accuracy": float(spearmanr(h_lw, acc)[0]),
            "selected_by_h": picked, "selected_by_h_lw": picked_lw,
            "best_by_accuracy": best_acc, "best_by_logloss": best_loss,
            "accuracy_of_selected": float(acc[names.index(picked)]), "best_accuracy": float(acc.max()),
        }
        summary.append(s)
        print(f"\ntarget {tname}")
        print(f"  {'representation':<12} {'H':>8} {'H_LW':>8} {'logloss':>8} {'acc':>6}")
        for i, r in enumerate(names):
            print(f"  {r:<12} {h[i]:8.4f} {h_lw[i]:8.4f} {loss[i]:8.4f} {acc[i]:6.3f}")
            rows.append({"target": tname, "representation": r, "hscore": float(h[i]), "hscore_lw": float(h_lw[i]),
                         "test_logloss": float(loss[i]), "test_accuracy": float(acc[i])})
        print(f"  Spearman(H, -logloss) = {s['spearman_h_vs_neg_logloss']:+.3f}   Spearman(H, acc) = "
              f"{s['spearman_h_vs_accuracy']:+.3f}   (H_LW: {s['spearman_hlw_vs_neg_logloss']:+.3f}, "
              f"{s['spearman_hlw_vs_accuracy']:+.3f})")
        print(f"  selected by H: {picked} (acc {s['accuracy_of_selected']:.3f}); by H_LW: {picked_lw}; "
              f"best by accuracy: {best_acc} ({acc.max():.3f}); best by log-loss: {best_loss}")
    print("\nsummary (Spearman per target: H vs -logloss, H vs accuracy; selection)")
    for s in summary:
        hit = "yes" if s["selected_by_h"] in (s["best_by_accuracy"], s["best_by_logloss"]) else "no"
        print(f"  {s['target']:<11} {s['spearman_h_vs_neg_logloss']:+.3f} {s['spearman_h_vs_accuracy']:+.3f}  "
              f"picked {s['selected_by_h']:<10} best-acc {s['best_by_accuracy']:<10} "
              f"best-loss {s['best_by_logloss']:<10} match: {hit}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
