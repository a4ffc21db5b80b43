"""Training time of Task2Box 5-D settings, alternating, on the seed-0 split of the taxonomy benchmark ([mu],
300 epochs; issue 14's 3x budget). Default: the default before issue 14 (``geometric=False, ema=0,
weight_decay=1e-2``), the first-pass default (geometric head, ``ema=0, weight_decay=1e-2``), the second-pass
default (``neighbours=False``), the third-pass default (``neighbours="auto"``, no closure, raw kernel) and the
default (``neighbours="auto"``: a second, internal fit, its seconds include it, its epochs are the final fit's;
``closure=True``, ``neighbour_kernel="input"``). ``closure=False`` is given explicitly to the earlier settings.

    python benchmarks/task2box_time.py --data ../shared/data/taxonomy [--repeats 2] [--configs JSON ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from tasklens.task2box import (Task2Box, base_representations, load_taxonomy, relations_from_taxonomy,  # noqa: E402
                               split_novel, split_pairs)

CONFIGS = ['{"geometric": false, "ema": 0, "weight_decay": 1e-2, "neighbours": false, "closure": false}',
           '{"ema": 0, "weight_decay": 1e-2, "neighbours": false, "closure": false}',
           '{"neighbours": false, "closure": false}', '{"closure": false, "neighbour_kernel": "raw"}', '{}']


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=CONFIGS,
                    help='Task2Box keyword arguments as JSON; "members": true fits with members=')
    args = ap.parse_args(argv)
    table, emb = load_taxonomy(args.data)
    taxa = relations_from_taxonomy(table)
    R, n = taxa.relations, len(taxa)
    X = base_representations(emb, taxa.members)
    existing, _ = split_novel(n, fraction=0.1, seed=0, stratify=taxa.levels)
    tr, va, _ = split_pairs(n, seed=0, datasets=existing)
    for _ in range(args.repeats):
        for cfg in args.configs:
            kw = json.loads(cfg)
            fit_kw = {"members": [emb[m] for m in taxa.members]} if kw.pop("members", False) else {}
            t = time.perf_counter()
            m = Task2Box(box_dim=5, seed=0, epochs=300, progress=False, **kw).fit(X, R, tr, va, **fit_kw)
            secs = time.perf_counter() - t
            print(f"{cfg}: {secs:.1f} s, {m.history_['epochs_run']} epochs, "
                  f"{secs / m.history_['epochs_run'] * 1000:.1f} ms/epoch", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
