"""`gpubk info` reports a device it cannot use (and everything else it knows), and the folder
where Numba really caches the kernels."""
import os
import pathlib
import subprocess
import sys

import numba
import pytest

import gpubk as K
from gpubk import kernels


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **env}, timeout=120)


def gpubk_info(**env) -> subprocess.CompletedProcess:
    return run_python("import sys; from gpubk.cli import main; sys.exit(main(['info']))", **env)


@pytest.mark.parametrize("device,why", [
    ("tpu", "GPUBK_DEVICE=tpu: unknown device 'tpu'; expected 'cpu', 'gpu', 'gpu:N' or 'sim'"),
    ("gpu:99", "GPUBK_DEVICE=gpu:99: gpu:99 requested but "),
])
def test_info_reports_an_unusable_device_and_everything_else(device, why):
    run = gpubk_info(GPUBK_DEVICE=device)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith(f"gpubk info: {why}")
    lines = run.stdout.splitlines()
    assert lines[0] == f"gpubk {K.__version__}" and lines[1].startswith("python ")
    assert lines[2].startswith(f"numpy {__import__('numpy').__version__}, numba "
                               f"{numba.__version__}")
    assert lines[3].startswith(f"device: none usable ({why}")
    assert lines[-1].startswith("kernels cached: ")


def test_info_names_the_cache_folder_numba_uses_beside_the_kernels():
    run = gpubk_info(GPUBK_DEVICE="cpu", NUMBA_CACHE_DIR="")
    assert run.returncode == 0, run.stderr
    folder = pathlib.Path(kernels.__file__).parent / "__pycache__"
    last = run.stdout.splitlines()[-1]
    assert f" in {folder}" in last and last.endswith("(beside the kernels' source)")


def test_info_follows_numba_cache_dir(tmp_path):
    # A kernel compiled with NUMBA_CACHE_DIR set lands where info says, and is counted.
    compile_one = ("import numpy as np, gpubk as K; "
                   "K.softmax(K.constant(np.ones((256, 256), np.float32)))")
    assert run_python(compile_one, GPUBK_DEVICE="cpu", NUMBA_CACHE_DIR=str(tmp_path)
                      ).returncode == 0
    (index,) = tmp_path.rglob("softmax._forward_cpu-*.nbi")
    run = gpubk_info(GPUBK_DEVICE="cpu", NUMBA_CACHE_DIR=str(tmp_path))
    assert run.stdout.splitlines()[-1] == (
        f"kernels cached: 1 kernel(s) in {index.parent} (NUMBA_CACHE_DIR)")


def test_info_reports_the_user_wide_folder_when_the_kernels_folder_is_read_only():
    # Root can write anywhere, so make the in-tree locator refuse, as a read-only install does.
    code = ("import sys, numba.core.caching as c\n"
            "c.InTreeCacheLocator.from_function = classmethod(lambda cls, f, p: None)\n"
            "from gpubk import info, kernels\n"
            "print(info._kernel_cache())\n"
            "kernel = kernels.softmax._forward_cpu.py_func\n"
            "locator = c.UserWideCacheLocator(kernel, kernel.__code__.co_filename)\n"
            "print(locator.get_cache_path())\n")
    run = run_python(code, GPUBK_DEVICE="cpu", NUMBA_CACHE_DIR="")
    assert run.returncode == 0, run.stderr
    reported, user_wide = run.stdout.splitlines()
    assert f" {user_wide}" in reported and "__pycache__" not in reported
    assert f" in {user_wide} (Numba's user-wide folder: the kernels' own folder is not " \
           "writable)" in reported
