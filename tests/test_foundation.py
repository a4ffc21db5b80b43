"""The package skeleton: cheap import, build facts, threads, validation and dispatch, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import tasklens
from tasklens import _dispatch, _validation
from tasklens.cli import main as cli_main


def test_import_does_not_import_torch():
    code = "import sys, tasklens; tasklens.info(); import tasklens.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_info_reports_build():
    facts = tasklens.info()
    assert facts["version"] == tasklens.__version__
    assert facts["num_threads"] >= 1
    assert isinstance(facts["cuda_compiled"], bool)
    if facts["cuda_compiled"]:
        assert facts["cuda_architectures"], "a CUDA build must list its architectures"
    assert facts["cuda_devices"] >= 0


def test_set_num_threads_roundtrip(threads):
    threads(1)
    assert tasklens.get_num_threads() == 1
    threads(3)
    assert tasklens.get_num_threads() == 3
    threads(None)
    assert tasklens.get_num_threads() >= 1
    with pytest.raises(ValueError, match="set_num_threads"):
        tasklens.set_num_threads(-2)


def test_check_array_keeps_kind_and_makes_contiguous():
    x = np.arange(12, dtype=np.float32).reshape(3, 4).T
    y = _validation.check_array(x, "x", ndim=2)
    assert y.flags.c_contiguous and y.dtype == np.float32
    np.testing.assert_array_equal(y, x)
    z = _validation.check_array(np.ones((2, 2), dtype=np.int32), "z")
    assert z.dtype == np.float64


@pytest.mark.parametrize("bad, err, words", [
    (np.ones((2, 3, 4)), ValueError, ["x", "2-D", "(2, 3, 4)", "float64"]),
    (np.array([[1.0, np.nan]]), ValueError, ["x", "NaN", "(1, 2)"]),
    (np.array([["a", "b"]]), TypeError, ["x", "<U1"]),
    ("text", TypeError, ["x"]),
])
def test_check_array_errors_name_argument_shape_dtype(bad, err, words):
    with pytest.raises(err) as info:
        _validation.check_array(bad, "x", ndim=2)
    for w in words:
        assert w in str(info.value)


def test_check_labels():
    y = _validation.check_labels(np.array([0.0, 2.0, 1.0]), "labels", n=3)
    assert y.dtype == np.int64 and list(y) == [0, 2, 1]
    with pytest.raises(TypeError, match="labels"):
        _validation.check_labels(np.array([0.5, 1.0]), "labels")
    with pytest.raises(ValueError, match="non-negative"):
        _validation.check_labels(np.array([-1, 1]), "labels")
    with pytest.raises(ValueError, match="expected 4 labels"):
        _validation.check_labels(np.array([0, 1]), "labels", n=4)


def test_backend_of_and_output_rule():
    torch = pytest.importorskip("torch")
    a = torch.zeros(3, dtype=torch.float32)
    b = torch.zeros(3, dtype=torch.float64)
    be = _dispatch.backend_of(a=a, b=b)
    assert be.kind == "torch" and be.device == "cpu" and be.dtype == "float64"
    assert _dispatch.cast(a, be).dtype == torch.float64
    out = be.out(np.ones(2))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    scalar = be.out(np.float64(2.5))
    assert isinstance(scalar, torch.Tensor) and scalar.ndim == 0 and float(scalar) == 2.5
    np_be = _dispatch.backend_of(x=np.zeros(2))
    assert type(np_be.out(np.float64(2.5))) is float
    assert np_be.out((np.ones(1), 3.0))[1] == 3.0
    ints = _dispatch.backend_of(i=np.arange(3))
    assert ints.kind == "numpy" and ints.dtype == "float64"
    meta = torch.empty(2, device="meta")
    with pytest.raises(TypeError, match="x: tasklens supports CPU and CUDA tensors, got a tensor on meta"):
        _validation.check_array(meta, "x")
    with pytest.raises(TypeError, match="mix of numpy arrays and torch tensors"):
        _dispatch.backend_of(a=a, n=np.zeros(3))
    assert _dispatch.backend_of(x=np.zeros(2, np.float32)).dtype == "float32"


def test_cli_info_json(capsys):
    assert cli_main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == tasklens.__version__


def test_cli_every_subcommand_has_help(capsys):
    parser = __import__("tasklens.cli", fromlist=["build_parser"]).build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "info" in sub.choices
    for name in sub.choices:
        with pytest.raises(SystemExit) as exit_info:
            cli_main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: tasklens" in capsys.readouterr().out


def test_lazy_attribute_error():
    with pytest.raises(AttributeError, match="no attribute"):
        tasklens.not_a_function  # noqa: B018
