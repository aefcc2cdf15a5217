"""bench/gpu_check.sh, checked on the CPU so that a lent GPU's minutes go to measuring: the
package is staged as it installs and imported from there even when the check runs from the
repository root, and its smoke stage passes on cpu and sim and catches a wrong kernel."""
import os
import pathlib
import subprocess
import sys

import numpy as np

from gpubk.bench import smoke
from gpubk.kernels import softmax

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_the_staged_package_is_imported_from_the_repository_root(tmp_path):
    """The failure this prevents: `python3 -c`/`-m` run from the repository root put the
    source folder gpubk/ (which lacks gpubk.kernels) first on sys.path."""
    subprocess.run(["bash", str(REPO / "bench" / "stage.sh"), str(tmp_path)], check=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONSAFEPATH": "1"}
    code = ("import gpubk, gpubk.kernels.softmax, gpubk.bench.smoke, gpubk.bench.harness, "
            "gpubk.bench.compiler; "
            "print(gpubk.__file__); print(gpubk.kernels.softmax.__file__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True)
    for line in run.stdout.split():
        assert pathlib.Path(line).is_relative_to(tmp_path), line
    assert (tmp_path / "gpubk" / "kernels" / "softmax.py").is_file()


def test_the_check_script_parses_and_its_stages_fit_in_8_minutes():
    script = REPO / "bench" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    limits = [int(line.split()[2]) for line in script.read_text().splitlines()
              if line.startswith("stage ")]
    assert len(limits) == 7 and sum(limits) <= 480 - 10, limits  # 10 s left for staging


def test_smoke_passes_on_every_host_device(kernel_device, capsys):
    assert smoke.main(["--device", kernel_device, "--rows", "4"]) == 0
    assert "0 failure(s)" in capsys.readouterr().out


def test_smoke_catches_a_wrong_kernel(monkeypatch, capsys):
    real = softmax.forward
    monkeypatch.setattr(softmax, "forward",
                        lambda device, a, axis, take_log=False: np.flip(
                            real(device, a, axis, take_log), axis))
    assert smoke.main(["--device", "cpu", "--rows", "4"]) == 1
    assert "FAIL softmax " in capsys.readouterr().out
