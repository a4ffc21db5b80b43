"""The pair engine (tasklens.pairs): tiles against domain_distance_matrix and a float64 brute force written
from Eq. 1 of Factors of Influence, resume, manifest checks, readers, bad stores, CLI and the Ray backend."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklens.domain import domain_distance, domain_distance_matrix, sample_datasets
from tasklens.pairs import choose_tile, read_pairs, score_pairs, tile_bytes
from tasklens.pairs import manifest as mf
from tasklens.pairs import worker
from tasklens.pairs.tiles import compute_tile, parse_bytes, plan

pytest.importorskip("pyarrow")


def ref_matrix(datasets, metric="euclidean"):
    """float64 brute force of D[t, s] = mean_{x in T} min_{y in S} d(x, y) (Eq. 1), no expansion tricks."""
    m = len(datasets)
    out = np.zeros((m, m))
    for t in range(m):
        for s in range(m):
            a = np.asarray(datasets[t], np.float64)
            b = np.asarray(datasets[s], np.float64)
            if metric == "cosine":
                a = a / np.linalg.norm(a, axis=1, keepdims=True)
                b = b / np.linalg.norm(b, axis=1, keepdims=True)
            d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
            d = {"euclidean": np.sqrt(d2), "sqeuclidean": d2, "cosine": 0.5 * d2}[metric]
            out[t, s] = d.min(axis=1).mean()
    return out


def make_data(rng, m, d=6, sizes=None, dtype=np.float32):
    sizes = sizes if sizes is not None else rng.integers(1, 25, size=m)
    return [(rng.standard_normal((int(n), d)) + rng.standard_normal(d)).astype(dtype) for n in sizes]


def tile_files(out):
    return sorted(f for f in os.listdir(out) if f.startswith("tile-"))


@pytest.mark.parametrize("m,tile", [(1, 1), (1, 4), (2, 1), (5, 2), (7, 3), (6, 6), (9, 4)])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_tiles_of_every_shape_equal_the_matrix(m, tile, metric, rng, tmp_path):
    sizes = rng.integers(1, 25, size=m)
    sizes[0] = 1  # a dataset with one row
    data = make_data(rng, m, sizes=sizes)
    res = score_pairs(data, tmp_path, sample=None, tile=tile, metric=metric,
                      scores=("target_to_source", "source_to_target", "symmetric"))
    nb = -(-m // tile)
    assert res["tiles"] == nb * (nb + 1) // 2 == len(tile_files(tmp_path))
    got = read_pairs(tmp_path, dense=True)
    np.testing.assert_array_equal(got, domain_distance_matrix(data, metric=metric))
    np.testing.assert_allclose(got, ref_matrix(data, metric), rtol=1e-12, atol=1e-12)
    for method in ("source_to_target", "symmetric"):
        np.testing.assert_array_equal(read_pairs(tmp_path, dense=True, score=method),
                                      domain_distance_matrix(data, method=method, metric=metric))
    table = read_pairs(tmp_path)
    assert len(table) == m * m and not table.duplicated(["target", "source"]).any()
    assert all(table[c].dtype == np.float64 for c in ("target_to_source", "source_to_target", "symmetric"))


def test_workers_and_threads_give_identical_results(rng, tmp_path, threads):
    data = make_data(rng, 7)
    score_pairs(data, tmp_path / "one", sample=None, tile=2, workers=1)
    expect = read_pairs(tmp_path / "one")
    threads(1)
    score_pairs(data, tmp_path / "t1", sample=None, tile=2, workers=1)
    threads(None)
    score_pairs(data, tmp_path / "three", sample=None, tile=2, workers=3)
    pd.testing.assert_frame_equal(read_pairs(tmp_path / "t1"), expect)
    pd.testing.assert_frame_equal(read_pairs(tmp_path / "three"), expect)


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=9), tile=st.integers(1, 10),
       d=st.integers(1, 5), seed=st.integers(0, 2 ** 16), metric=st.sampled_from(["euclidean", "sqeuclidean"]))
def test_property_any_tiling_equals_the_matrix(sizes, tile, d, seed, metric):
    import tempfile

    rng = np.random.default_rng(seed)
    data = [np.round(rng.standard_normal((n, d)), 1).astype(np.float32) for n in sizes]  # rounding: exact ties
    with tempfile.TemporaryDirectory() as out:
        score_pairs(data, out, sample=None, tile=tile, metric=metric, workers=1)
        got = read_pairs(out, dense=True)
    np.testing.assert_array_equal(got, domain_distance_matrix(data, metric=metric))
    np.testing.assert_allclose(got, ref_matrix(data, metric), rtol=1e-12, atol=1e-12)


def test_float64_store_and_emd(rng, tmp_path):
    data = make_data(rng, 4, d=3, sizes=[3, 1, 5, 4], dtype=np.float64)
    score_pairs(data, tmp_path, sample=None, tile=3, scores=("emd", "target_to_source"))
    np.testing.assert_allclose(read_pairs(tmp_path, dense=True, score="emd"),
                               domain_distance_matrix(data, method="emd"), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(read_pairs(tmp_path, dense=True, score="target_to_source"),
                                  domain_distance_matrix(data))


@pytest.mark.parametrize("variance", [False, True])
def test_box_containment_from_a_fitted_task2box(variance, rng, tmp_path):
    pytest.importorskip("torch")
    from tasklens.task2box import Task2Box, base_representations

    data = make_data(rng, 7, d=3, sizes=[5, 1, 8, 3, 6, 2, 4])
    base = np.stack([base_representations(x, [np.arange(len(x))], variance=variance)[0] for x in data])
    relations = np.zeros((7, 7), dtype=bool)
    relations[[1, 3, 5], [0, 2, 4]] = True
    mask = ~np.eye(7, dtype=bool)
    model = Task2Box(box_dim=2, seed=0, epochs=3, hidden=(8,), progress=False).fit(base, relations, mask)
    score_pairs(data, tmp_path, sample=None, tile=3, scores=("box_containment", "target_to_source"), task2box=model)
    expect = model.containment(base)  # S[t, s] = vol(z_t ∩ z_s) / vol(z_t), Task2Box Eq. 5
    got = read_pairs(tmp_path, dense=True, score="box_containment")
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-7)
    assert np.ptp(got) > 0  # not a constant
    top = read_pairs(tmp_path, top_k=2, score="box_containment")  # the most containing sources first
    for t in range(7):
        row = [(-got[t, s], s) for s in range(7) if s != t]
        assert top[top["target"].astype(int) == t]["source"].astype(int).tolist() == [s for _, s in sorted(row)[:2]]
    path = model.save(str(tmp_path / "model.pt"))
    res = score_pairs(data, tmp_path, sample=None, tile=3, scores=("box_containment", "target_to_source"),
                      task2box=path)
    assert res["tiles_run"] == 0  # same boxes from the saved model: the run is complete
    other = Task2Box(box_dim=2, seed=1, epochs=3, hidden=(8,), progress=False).fit(base, relations, mask)
    with pytest.raises(ValueError, match="parameter task2box"):
        score_pairs(data, tmp_path, sample=None, tile=3, scores=("box_containment", "target_to_source"),
                    task2box=other)
    with pytest.raises(ValueError, match="needs task2box"):
        score_pairs(data, tmp_path / "x", sample=None, scores=("box_containment",))
    with pytest.raises(ValueError, match="the model takes"):
        score_pairs([x[:, :2] for x in data], tmp_path / "y", sample=None, scores=("box_containment",),
                    task2box=model)


def test_transpose_direction_from_one_tile_equals_separate_calls(rng):
    data = make_data(rng, 5, sizes=[4, 1, 7, 3, 9])
    xi, off_i = np.concatenate(data[:2]), np.array([0, 4, 5])
    xj, off_j = np.concatenate(data[2:]), np.array([0, 7, 10, 19])
    cols = compute_tile(xi, off_i, [0, 1], xj, off_j, [2, 3, 4], ["target_to_source", "source_to_target"],
                        "euclidean")
    assert len(cols["target"]) == 12
    for t, s, fwd, bwd in zip(cols["target"], cols["source"], cols["target_to_source"], cols["source_to_target"]):
        assert (t < 2) != (s < 2)  # only cross pairs
        pair = domain_distance_matrix([data[t], data[s]])  # a separate call per pair, same float64 sums
        assert fwd == pair[0, 1] and bwd == pair[1, 0]  # the reverse direction (t in J) included
        assert fwd == pytest.approx(domain_distance(data[t], data[s]), rel=1e-14)


def test_directory_store_formats_sampling_and_order(rng, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = tmp_path / "store"
    store.mkdir()
    arrays = {name: (rng.standard_normal((n, 4)) * 3).astype(np.float32)
              for name, n in [("b_npz", 30), ("a_npy", 12), ("c_parquet", 25), ("d_npy", 1)]}
    np.save(store / "a_npy.npy", arrays["a_npy"])
    np.savez(store / "b_npz.npz", features=arrays["b_npz"], labels=np.arange(30))
    pq.write_table(pa.table({"label": ["x"] * 25, **{f"f{k}": arrays["c_parquet"][:, k] for k in range(4)}}),
                   store / "c_parquet.parquet")
    np.save(store / "d_npy.npy", arrays["d_npy"])
    (store / "README.txt").write_text("not a dataset")
    out = tmp_path / "out"
    score_pairs(str(store), out, sample=10, seed=3, tile=3)
    names = sorted(arrays)
    expect = domain_distance_matrix(sample_datasets([arrays[n] for n in names], 10, seed=3, names=names))
    np.testing.assert_array_equal(read_pairs(out, dense=True), expect)
    man = mf.read_manifest(str(out))
    assert man["inputs"]["names"] == names and man["inputs"]["rows"] == [10, 10, 10, 1]
    assert list(read_pairs(out)["target"].cat.categories) == names


def test_resume_after_a_crash_is_exact(rng, tmp_path, monkeypatch):
    data = make_data(rng, 7)
    ref_dir = tmp_path / "ref"
    score_pairs(data, ref_dir, sample=None, tile=2, scores=("target_to_source", "symmetric"))
    real = mf.write_tile
    calls = []

    def crashing(path, cols):
        calls.append(path)
        if len(calls) == 4:  # the 4th tile dies while its file is half written, at its final name
            size = real(path, cols)
            with open(path, "r+b") as f:
                f.truncate(size // 2)
            with open(mf.tmp_name(path), "wb") as f:
                f.write(b"PAR1")
            raise RuntimeError("simulated crash")
        return real(path, cols)

    out = tmp_path / "out"
    monkeypatch.setattr(worker.mf, "write_tile", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):  # one worker: exactly 3 tiles finish first
        score_pairs(data, out, sample=None, tile=2, scores=("target_to_source", "symmetric"), workers=1)
    monkeypatch.setattr(worker.mf, "write_tile", real)
    assert len(mf.read_manifest(str(out))["tiles"]) == 3
    with open(out / mf.LOG, "a") as f:
        f.write('{"tile": "3-3", "file": "tile-000')  # torn while appending: that tile just runs again
    with pytest.raises(ValueError, match="unfinished"):
        read_pairs(out, dense=True)
    res = score_pairs(data, out, sample=None, scores=("target_to_source", "symmetric"))  # tile from the manifest
    assert res["tiles_skipped"] == 3 and res["tiles_run"] == res["tiles"] - 3 == 7
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(ref_dir))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert tile_files(out) == tile_files(ref_dir)
    # a finished tile whose file was damaged afterwards (size differs from the manifest) is recomputed
    victim = out / tile_files(out)[0]
    victim.write_bytes(victim.read_bytes()[:100])
    res = score_pairs(data, out, sample=None, scores=("target_to_source", "symmetric"))
    assert res["tiles_run"] == 1
    pd.testing.assert_frame_equal(read_pairs(out), read_pairs(ref_dir))


def test_manifest_mismatch_is_refused(rng, tmp_path):
    data = make_data(rng, 4)
    score_pairs(data, tmp_path, sample=None, tile=2)
    with pytest.raises(ValueError, match=r"refusing to resume.*parameter metric: manifest 'euclidean', now 'cosine'"):
        score_pairs(data, tmp_path, sample=None, tile=2, metric="cosine")
    with pytest.raises(ValueError, match=r"parameter tile: manifest 2, now 3"):
        score_pairs(data, tmp_path, sample=None, tile=3)
    changed = [d.copy() for d in data]
    changed[2][0, 0] += 1.0
    with pytest.raises(ValueError, match=r"1 dataset\(s\) changed content: \['2'\]"):
        score_pairs(changed, tmp_path, sample=None, tile=2)
    with pytest.raises(ValueError, match="datasets differ"):
        score_pairs(data[:3], tmp_path, sample=None, tile=2)
    res = score_pairs(changed, tmp_path, sample=None, tile=2, resume=False)  # starts over
    assert res["tiles_run"] == 3
    np.testing.assert_array_equal(read_pairs(tmp_path, dense=True), domain_distance_matrix(changed))


@pytest.mark.parametrize("by", ["target", "source"])
@pytest.mark.parametrize("include_self", [False, True])
def test_top_k_equals_sorting_the_dense_matrix(by, include_self, rng, tmp_path):
    data = make_data(rng, 9, d=2, sizes=[1, 2, 1, 3, 1, 2, 1, 1, 2])  # small sets: many exact ties
    data[4] = data[2].copy()
    score_pairs(data, tmp_path, sample=None, tile=4)
    dense = read_pairs(tmp_path, dense=True)
    k = 3
    got = read_pairs(tmp_path, top_k=k, by=by, include_self=include_self)
    mat = dense if by == "target" else dense.T
    rows = []
    for key in range(9):
        others = [o for o in range(9) if include_self or o != key]
        order = sorted(others, key=lambda o: (mat[key, o], o))[:k]
        rows += [(key, o, mat[key, o], r) for r, o in enumerate(order)]
    expect = pd.DataFrame(rows, columns=[by, "other", "score", "rank"])
    assert got[by].astype(int).tolist() == expect[by].tolist()
    assert got["source" if by == "target" else "target"].astype(int).tolist() == expect["other"].tolist()
    np.testing.assert_array_equal(got["score"].to_numpy(), expect["score"].to_numpy())
    assert got["rank"].tolist() == expect["rank"].tolist()


def _listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else None


def test_bad_stores_name_the_dataset_and_leave_nothing(rng, tmp_path):
    good = make_data(rng, 3, d=4)
    store = tmp_path / "store"
    store.mkdir()
    for k, x in enumerate(good):
        np.save(store / f"ds{k}.npy", x)
    out = tmp_path / "out"
    cases = [
        ([str(store / "ds0.npy"), str(store / "missing.npy")], FileNotFoundError, "dataset 'missing'.*not found"),
        ([good[0], good[1][:, :3]], ValueError, r"dataset '1'.*expected 4 feature columns.*shape \(\d+, 3\)"),
        ([good[0], np.where(np.arange(4) == 2, np.nan, good[1])], ValueError, "dataset '1'.*NaN"),
        ([good[0], np.zeros((0, 4))], ValueError, "dataset '1'.*at least one row"),
        ([good[0], np.zeros(4)], ValueError, "dataset '1'.*2-D"),
        ([], ValueError, "at least one dataset"),
        (str(tmp_path / "nowhere"), FileNotFoundError, "not a directory"),
    ]
    for store_arg, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            score_pairs(store_arg, out, sample=None)
        assert _listing(out) is None  # nothing created
    np.save(store / "ds1.npy", np.full((5, 4), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match=r"dataset 'ds1' \(.*ds1.npy\).*NaN"):
        score_pairs(str(store), out)
    # a run that fails on a resumed directory keeps its earlier, complete files and leaves no temporary file
    score_pairs(good, out, sample=None, tile=2)
    before = _listing(out)
    with pytest.raises(ValueError, match="dataset '2'.*NaN"):
        score_pairs(good[:2] + [np.full((2, 4), np.nan)], out, sample=None, tile=2)
    assert _listing(out) == before
    with pytest.raises(ValueError, match="scores: expected one of"):
        score_pairs(good, out, scores=("hscore",))
    with pytest.raises(ValueError, match="memory_budget"):
        score_pairs(good, out, memory_budget="lots")


def test_memory_formula_and_tile_choice(rng, tmp_path):
    assert parse_bytes("4GB") == 4 * 10 ** 9 and parse_bytes("512MiB") == 512 * 2 ** 20 and parse_bytes(1000) == 1000
    n, d = 100, 128
    for budget in (10 ** 8, 10 ** 9, 4 * 10 ** 9):
        b = choose_tile(1000, n, d, 4, 1, budget)
        assert tile_bytes(b, n, d, 4, 1) <= budget
        assert b * n <= 8192 and (b == 8192 // n or tile_bytes(b + 1, n, d, 4, 1) > budget)
    assert choose_tile(3, n, d, 4, 1, 10 ** 12) == 3
    with pytest.raises(ValueError, match="memory_budget"):
        choose_tile(10, n, d, 4, 1, 1000)
    data = make_data(rng, 5, sizes=[20] * 5)
    budget = tile_bytes(2, 20, 6, 4, 1) + 1
    res = score_pairs(data, tmp_path / "a", sample=None, memory_budget=budget, workers=1)
    assert res["tile"] == 2 and res["tiles"] == len(plan(5, 2)) == 6
    np.testing.assert_array_equal(read_pairs(tmp_path / "a", dense=True), domain_distance_matrix(data))
    # two concurrent tiles share the budget
    assert score_pairs(data, tmp_path / "b", sample=None, memory_budget=2 * budget, workers=2)["tile"] == 2
    assert score_pairs(data, tmp_path / "c", sample=None, memory_budget=2 * budget, workers=1)["tile"] > 2


def test_log_line_per_tile_and_progress_bar(rng, tmp_path, caplog, capsys):
    data = make_data(rng, 5)
    with caplog.at_level(logging.INFO, logger="tasklens.pairs"):
        score_pairs(data, tmp_path / "a", sample=None, tile=2, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tile (")]
    assert len(lines) == 6 and all("pairs/s" in s for s in lines)
    assert "pair/s" in capsys.readouterr().err
    score_pairs(data, tmp_path / "b", sample=None, tile=2, progress=False)
    assert "pair/s" not in capsys.readouterr().err


def test_cli(rng, tmp_path, capsys):
    from tasklens.cli import main

    store = tmp_path / "store"
    store.mkdir()
    data = make_data(rng, 4, d=3)
    for k, x in enumerate(data):
        np.save(store / f"d{k}.npy", x)
    out = tmp_path / "out"
    assert main(["pairs", str(store), "--out", str(out), "--tile", "3", "--sample", "0", "--no-progress"]) == 0
    assert "wrote 16 pairs of 4 datasets" in capsys.readouterr().out
    np.testing.assert_array_equal(read_pairs(out, dense=True), domain_distance_matrix(data))
    assert main(["pairs", str(store), "--out", str(out), "--tile", "3", "--sample", "0", "--metric", "cosine"]) == 1
    assert "refusing to resume" in capsys.readouterr().err
    assert main(["pairs", str(store), "--out", str(out), "--tile", "3", "--sample", "0", "--metric", "cosine",
                 "--no-resume"]) == 0
    np.testing.assert_array_equal(read_pairs(out, dense=True), domain_distance_matrix(data, metric="cosine"))


# ---- Ray backend: one local runtime with 2 CPUs for the module --------------------------------------------

@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    import tasklens

    if ray.is_initialized():
        ray.shutdown()
    root = os.path.dirname(os.path.dirname(tasklens.__file__))
    env = {worker.FAULT_ENV: "kill-once",
           "PYTHONPATH": os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p)}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env}, logging_level=logging.WARNING,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_equals_local_cell_for_cell(ray_runtime, rng, tmp_path):
    data = make_data(rng, 7)
    score_pairs(data, tmp_path / "local", sample=None, tile=2, scores=("target_to_source", "source_to_target"))
    res = score_pairs(data, tmp_path / "ray", sample=None, tile=2, backend="ray", max_in_flight=3,
                      scores=("target_to_source", "source_to_target"))
    assert res["tiles_run"] == 10
    pd.testing.assert_frame_equal(read_pairs(tmp_path / "ray"), read_pairs(tmp_path / "local"))


def test_ray_survives_a_killed_worker(ray_runtime, rng, tmp_path):
    data = make_data(rng, 8, sizes=rng.integers(1, 40, size=8))
    score_pairs(data, tmp_path / "local", sample=None, tile=2)
    out = tmp_path / "ray"
    out.mkdir()
    (out / worker.FAULT_MARKER).write_text("")  # the first tile task to see it kills its own worker
    res = score_pairs(data, out, sample=None, tile=2, backend="ray")
    assert (out / (worker.FAULT_MARKER + ".fired")).exists()  # a worker really died mid-tile
    assert res["tiles_run"] == res["tiles"] == 10
    table = read_pairs(out)
    assert len(table) == 64 and not table.duplicated(["target", "source"]).any()
    pd.testing.assert_frame_equal(table, read_pairs(tmp_path / "local"))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]  # the dead task's half file was cleared
    res = score_pairs(data, out, sample=None, tile=2, backend="ray")  # resuming a finished run: nothing to do
    assert res["tiles_run"] == 0
