"""A laptop install: `pip install .` needs only NumPy and Numba, and gpubk (its demo, its
gradients) runs where numba-cuda cannot be installed (it has no macOS wheels).

The machine without numba-cuda is a fresh virtual environment: a `.pth` file gives it every
package installed here but numba-cuda, CUDA's Python packages and CuPy (rather than
downloading NumPy, Numba, scikit-learn and matplotlib again), and gpubk is installed into it for
real (`pip install --no-deps .`: a wheel built from this checkout, not an editable install)."""
import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    return tomllib.loads((REPO / "pyproject.toml").read_text())
HIDDEN = ("numba_cuda", "cuda", "nvidia", "cupy", "gpubk", "__editable__", "_gpubk")


def test_the_base_install_needs_only_numpy_and_numba():
    project = _pyproject()["project"]
    names = {dep.split(">")[0].split("=")[0].split(";")[0].strip()
             for dep in project["dependencies"]}
    assert names == {"numpy", "numba"}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("numba-cuda") for dep in extras["sim"])
    for gpu in ("cuda12", "cuda13"):
        assert any(dep.startswith("numba-cuda[cu") for dep in extras[gpu]), gpu
    # the README's test command must keep working on macOS: numba-cuda only where it exists,
    # and without its CUDA 13 packages in `test`, so that `.[test,cuda12]` resolves too
    (cuda_dep,) = [dep for dep in extras["test"] if dep.startswith("numba-cuda")]
    assert "sys_platform != 'darwin'" in cuda_dep and "[cu" not in cuda_dep
    (audit_dep,) = extras["audit"]
    assert audit_dep.startswith("numba-cuda[cu13]") and "sys_platform != 'darwin'" in audit_dep


@pytest.fixture(scope="module")
def venv_without_numba_cuda(tmp_path_factory):
    """The python of a new virtual environment with gpubk installed and no numba-cuda."""
    root = tmp_path_factory.mktemp("laptop")
    deps = root / "deps"  # every package installed here but the hidden ones
    deps.mkdir()
    for entry in pathlib.Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(HIDDEN) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    (pathlib.Path(purelib.stdout.strip()) / "deps.pth").write_text(f"{deps}\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--quiet", str(REPO)],  # its build backend (setuptools) comes from PyPI, as for users
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return python


def _python(python, *args, cwd):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMBA_", "GPUBK_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONWARNINGS="ignore")
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


CHECK = """
import importlib.util, sys
import numpy as np
import gpubk as K
assert importlib.util.find_spec("numba_cuda") is None, "numba-cuda is visible"
w = K.variable(np.array([[0.5, -1.0], [2.0, 0.25]]), dtype="float64")
x = K.constant(np.array([[1.0, 2.0], [-3.0, 0.5], [0.1, 0.2]]), dtype="float64")
t = K.constant(np.eye(2)[[0, 1, 1]], dtype="float64")
def loss(value):
    return K.sum(K.categorical_crossentropy(t, K.softmax(K.relu(K.dot(x, value)) + 0.1)))
(g,) = K.gradients(loss(w), [w])
step = 1e-6
for i in range(2):
    for j in range(2):
        e = np.zeros((2, 2)); e[i, j] = step
        numeric = (K.eval(loss(K.constant(K.eval(w) + e, "float64"))) -
                   K.eval(loss(K.constant(K.eval(w) - e, "float64")))) / (2 * step)
        assert abs(K.eval(g)[i, j] - numeric) < 1e-6, (i, j, K.eval(g)[i, j], numeric)
big = K.constant(np.random.default_rng(0).standard_normal((300, 200)), "float32")
K.eval(K.softmax(big)); K.eval(K.sigmoid(big))  # large enough for the Numba CPU twins
print("cuda modules:", sorted(m for m in sys.modules if "cuda" in m))
try:
    K.device("sim").__enter__()
except K.DeviceError as err:
    print("sim:", err)
"""


def test_the_cpu_path_runs_without_numba_cuda(venv_without_numba_cuda, tmp_path):
    run = _python(venv_without_numba_cuda, "-c", CHECK, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "cuda modules: []" in run.stdout  # the CUDA parts were never imported
    assert "sim: sim requested but numba-cuda" in run.stdout and "'sim' extra" in run.stdout


def test_the_demo_trains_one_epoch_without_numba_cuda(venv_without_numba_cuda, tmp_path):
    run = _python(venv_without_numba_cuda, "-m", "gpubk", "demo", "--epochs", "1", "--subset",
                  "200", "--out", str(tmp_path / "demo"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "device cpu" in run.stdout and (tmp_path / "demo" / "weights.npz").is_file()


def test_every_subpackage_is_installed():
    """pyproject.toml lists the packages setuptools installs: a folder missing from the list
    works in an editable install and is absent from `pip install .` (and the Docker image)."""
    setuptools = _pyproject()["tool"]["setuptools"]
    roots = {"gpubk": REPO / "gpubk", **{name: REPO / folder for name, folder in
                                         setuptools["package-dir"].items()}}
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found.add(".".join((name, *parts)))
    assert found == set(setuptools["packages"])


def test_the_tests_skip_the_simulator_without_numba_cuda(venv_without_numba_cuda, tmp_path):
    """Where numba-cuda cannot be installed (macOS), the README's test command still passes:
    the simulator's cases skip and say why, the CPU cases run."""
    run = _python(venv_without_numba_cuda, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "-rs", "-k", "relu and float32 and eager", str(REPO / "tests" / "test_kinks.py"),
                  cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " skipped" in run.stdout
    assert "numba-cuda is not installed" in run.stdout
