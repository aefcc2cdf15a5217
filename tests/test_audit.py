"""The kernel audit (`gpubk kernels`): every CUDA kernel compiled for sm_80 and sm_90 with the
real compiler (libNVVM, then ptxas through nvJitLink; no GPU needed): no compile error, no
spill, no local memory, and no float64 arithmetic in a float32 kernel."""
import json
import os
import subprocess
import sys

import pytest

from gpubk.kernels import audit, launch

pytestmark = pytest.mark.sim  # needs numba-cuda


def test_every_kernel_compiles_clean_for_sm80_and_sm90(tmp_path):
    path = tmp_path / "audit.json"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}  # the real compiler, not the simulator
    run = subprocess.run([sys.executable, "-m", "gpubk", "kernels", "--arch", "sm_80,sm_90",
                          "--json", str(path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    if run.returncode == 1 and "needs libNVVM" in run.stderr:  # the compiler is an extra
        pytest.skip(run.stderr.strip())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(path.read_text())
    declared = {(f"gpubk.kernels.cuda.{family}", name, sig)
                for family in audit.FAMILIES
                for name, sigs in launch.cuda_family(family).LAUNCHES.items() for sig in sigs}
    assert {(r["module"], r["name"], r["signature"]) for r in rows} == declared
    assert sorted({r["arch"] for r in rows}) == ["sm_80", "sm_90"]
    for r in rows:
        assert not r["problems"] and r["error"] is None, r
        assert r["registers"] > 0 and r["spill_stores"] == r["spill_loads"] == 0, r
        if "float32[" in r["signature"]:
            assert r["f64_math"] == 0, r
    # the float64 kernels do compute in float64: the count would see float64 arithmetic
    assert any(r["f64_math"] > 0 for r in rows if "float64[" in r["signature"])


def test_the_float64_count_reads_ptx():
    ptx = """
        ld.param.f64 %fd1, [p];
        add.rn.f32 %f3, %f1, %f2;
        @%p1 fma.rn.f64 %fd2, %fd1, %fd1, %fd1;
        cvt.rn.f32.f64 %f4, %fd2;
        .reg .f64 %fd<5>;
        st.global.f64 [%rd1], %fd2;
    """
    assert audit.count_f64(ptx) == (2, 2)  # fma and cvt compute; ld and st move


def test_problems_name_what_is_wrong():
    row = audit.Row("m", "k", "void(float32[::1])", "sm_90", registers=40, spill_stores=8,
                    spill_loads=0, local_bytes=16, shared_bytes=0, f64_math=3, f64_moves=0)
    assert audit.problems(row) == ["spills 8 B stored, 0 B loaded", "16 B of local memory",
                                   "3 float64 arithmetic instructions in a float32 kernel"]
    row64 = audit.Row("m", "k", "void(float64[::1])", "sm_90", registers=40, spill_stores=0,
                      spill_loads=0, local_bytes=0, shared_bytes=0, f64_math=3, f64_moves=0)
    assert audit.problems(row64) == []
