"""Runtime settings: the CPU thread count (set_num_threads, TASKLENS_NUM_THREADS) and the info() GPU line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tasklens
from tasklens._info import gpu_status

from conftest import subprocess_env



@pytest.mark.parametrize("bad, err", [(2 ** 40, ValueError), (-1, ValueError), (2.5, TypeError), ("4", TypeError),
                                      (True, TypeError), (5000, ValueError)])
def test_set_num_threads_bad_values_are_clear_errors(threads, bad, err):
    """2**40 used to reach pybind11 ('incompatible function arguments'); now a named, bounded error."""
    before = tasklens.get_num_threads()
    with pytest.raises(err, match="set_num_threads: n"):
        threads(bad)
    assert tasklens.get_num_threads() == before


def test_set_num_threads_bounds(threads):
    threads(4096)
    assert tasklens.get_num_threads() == 4096
    threads(3.0)  # whole-number floats are accepted, never truncated
    assert tasklens.get_num_threads() == 3
    threads(0)
    assert tasklens.get_num_threads() >= 1


def _threads_in_child(value):
    env = subprocess_env(TASKLENS_NUM_THREADS=value)
    code = "import tasklens; print(tasklens.get_num_threads())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("value", ["abc", "2.5", "0", "-3", "99999999999", ""])
def test_bad_thread_environment_variable_warns_at_first_use(value):
    """TASKLENS_NUM_THREADS=abc was ignored silently; now a RuntimeWarning names it when the native module is
    first loaded, and the default (the usable cores) is used."""
    res = _threads_in_child(value)
    assert res.returncode == 0, res.stderr
    assert "RuntimeWarning" in res.stderr and f"TASKLENS_NUM_THREADS='{value}'" in res.stderr
    assert int(res.stdout.strip()) == len(os.sched_getaffinity(0))


def test_good_thread_environment_variable_is_used_quietly():
    res = _threads_in_child(" 3 ")
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.strip() == "3"


def test_bad_thread_environment_variable_is_an_error_under_warnings_as_errors():
    env = subprocess_env(TASKLENS_NUM_THREADS="abc")
    res = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c",
                          "import tasklens; tasklens.get_num_threads()"], capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "TASKLENS_NUM_THREADS='abc'" in res.stderr


def test_info_says_no_gpu_plainly():
    assert gpu_status(False, 0, "tasklens was built without CUDA").startswith("no GPU support")
    line = gpu_status(True, 0, "no usable CUDA device: CUDA driver version is insufficient")
    assert line.startswith("no GPU/driver") and "driver version is insufficient" in line
    assert gpu_status(True, 2, None) == "2 GPUs usable by the CUDA kernels"
    facts = tasklens.info()
    assert facts["gpu"] == gpu_status(facts["cuda_compiled"], facts["cuda_devices"], facts["cuda_note"])
    for key in ("version", "cuda_compiled", "cuda_devices", "cuda_note", "num_threads"):  # the keys the CLI shows
        assert key in facts


def test_cuda_class_sum_scratch_is_bounded():
    """The CUDA H-score class sums used up to 64 row segments of targets x classes x features float64 partial
    sums whatever C was (C=20k, F=768: about 8 GB a block); with ``classes`` the segments keep the scratch
    under 256 MiB (one segment at least). Host-side sizing, so it runs in any CUDA build, GPU or not."""
    from tasklens._native import native

    C = native()
    if not C.cuda_compiled:
        pytest.skip("tasklens built without CUDA kernels")
    seg = C.hscore_class_sum_segments_cuda
    limit = 256 << 20
    for rows, f, t, c in [(8192, 768, 1, 20000), (8192, 512, 100, 100), (8192, 64, 1, 10), (100, 4096, 3, 5000)]:
        s = seg(rows, f, t, c)
        assert 1 <= s <= min(64, rows)
        assert s == 1 or s * t * c * f * 8 <= limit
    assert seg(8192, 768, 1, 20000) == 2
    assert seg(8192, 768, 1) == seg(8192, 768, 1, 1) == 64  # the former count when classes is not given
    assert seg(8192, 768, 4, 10**6) == 1
