"""What `gpubk bench` prints and draws: which ceiling each fraction uses, noisy rows flagged,
a plot whose titles do not overlap; and the composed NumPy peer of conv2d+grad is right."""
import itertools

import numpy as np
import pytest

import gpubk as K
from gpubk.bench import harness

MACHINE = {"device": "cpu", "dtype": "float16", "bandwidth_Bps": 2e10, "bandwidth_bytes": 1 << 27,
           "matmul": "matmul 1024x1024", "matmul_FLOPps": 1e11}


def row(op, size, impl, spread=0.1, fraction=0.5, ceiling="copy 512 KiB", unit="B/s"):
    return {"op": op, "size": size, "impl": impl, "seconds": 1e-3, "spread": spread,
            "noisy": spread > harness.NOISY_SPREAD, "work": 1e6, "rate": 1e9, "unit": unit,
            "ceiling": ceiling, "fraction_of_ceiling": fraction}


def test_table_names_each_ceiling_and_flags_noisy_rows():
    rows = [row("softmax", "(256, 256)", "gpubk", spread=29.33),
            row("softmax", "(256, 256)", "numpy", spread=0.12, fraction=1.6),
            row("tiny ops", "x + y (4,)", "my-long-impl-name", fraction=None, ceiling=None),
            row("matmul", "(64,)", "gpubk", unit="FLOP/s", ceiling="matmul 1024x1024")]
    lines = harness.table({"machine": MACHINE, "rows": rows}).splitlines()
    assert lines[0] == ("device cpu, float16 inputs: a copy of 128 MiB moves 20.0 GB/s, a "
                        "float32 matmul 1024x1024 does 100.0 GFLOP/s")
    noisy, starred, small, flops = lines[2:6]
    assert noisy.split()[-7:] == ["noisy", "1.00", "GB/s", "50.0%", "copy", "512", "KiB"]
    assert "2933" not in noisy and "2,933" not in noisy
    assert starred.split()[-7:] == ["12%", "1.00", "GB/s", "160.0%*", "copy", "512", "KiB"]
    assert small.split()[-4:] == ["1.00", "GB/s", "-", "-"]
    assert flops.split()[-4:] == ["GFLOP/s", "50.0%", "matmul", "1024x1024"]
    assert any(line.startswith("noisy: 1 row(s)") and "up to 2,933%" in line for line in lines)
    assert any(line.startswith("*: faster than its ceiling") for line in lines)
    # every row's columns line up under the header's, however long an impl name
    header = lines[1]
    assert all(len(line) == len(lines[2]) for line in (noisy, starred))
    assert header.index("median") < noisy.index("ms")


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


def test_plot_titles_do_not_overlap_and_single_sizes_use_linear_axes():
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the 'bench' extra)")
    harness.load_builtin_cases()
    rows = [row(name, str(size), impl, unit=f"{spec.unit}/s")
            for name, spec in harness.CASES.items() for size in spec.quick_sizes
            for impl in ("gpubk", "numpy")]
    for i, r in enumerate(rows):
        r["rate"] = 1e8 * (1 + i % 7)
    fig = harness.figure({"machine": MACHINE, "rows": rows})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == len(harness.CASES)
    boxes = [ax.get_tightbbox(renderer) for ax in panels]  # titles and tick labels included
    for a, b in itertools.combinations(boxes, 2):
        assert _overlap(a, b) < 1.0
    suptitle = fig._suptitle.get_window_extent(renderer)
    assert all(_overlap(suptitle, box) < 1.0 for box in boxes)
    by_title = {ax.get_title(): ax for ax in panels}
    single = by_title["mlp step, size (64,)"]
    assert (single.get_xscale(), single.get_yscale()) == ("linear", "linear")
    assert [t.get_text() for t in single.get_xticklabels()] == ["gpubk", "numpy"]
    many = by_title["elementwise chain"]  # (4,), (4096,), (1048576,): elements on a log axis
    assert (many.get_xscale(), many.get_yscale()) == ("log", "log")
    assert list(many.get_xticks()) == [4, 4096, 1 << 20]
    named = by_title["tiny ops"]  # sizes that are not shapes: in order, on a linear axis
    assert named.get_xscale() == "linear" and list(named.get_xticks()) == [0, 1, 2]


def test_the_conv2d_grad_numpy_peer_gives_gpubks_values():
    harness.load_builtin_cases()
    size = (2, 5, 6, 3, 4)  # batch, height, width, channels in, channels out
    with K.device("cpu"):  # a fresh context each: both cases draw the same input and kernel
        work, impls = harness.CASES["conv2d+grad"].fn(harness.Context("cpu"), size)
        forward_work, forward = harness.CASES["conv2d"].fn(harness.Context("cpu"), size)
        d_input, d_kernel = (K.eval(g) for g in impls["gpubk"]())
        y, numpy_d_input, numpy_d_kernel = impls["numpy"]()
        gpubk_y = K.eval(forward["gpubk"]())
    assert work == 3 * forward_work == 3 * 2 * (2 * 5 * 6) * (3 * 3 * 3) * 4
    np.testing.assert_allclose(y, gpubk_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(forward["numpy"](), gpubk_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(numpy_d_input, d_input, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(numpy_d_kernel, d_kernel, rtol=1e-4, atol=1e-4)
    assert d_input.shape == (2, 5, 6, 3) and d_kernel.shape == (3, 3, 3, 4)


def test_user_case_units_are_checked_when_registered():
    with pytest.raises(ValueError, match="unit must be one of"):
        harness.case("never registered", sizes=[1], quick_sizes=[1], unit="seconds")
    assert "never registered" not in harness.CASES
