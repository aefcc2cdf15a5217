"""`gpubk bench --cases FILE`: a user's own `@case` functions run through the same harness, and
the README's example works as printed; a bad file is a one-line error."""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from gpubk.bench import harness

README = pathlib.Path(__file__).parent.parent / "README.md"


def gpubk_cmd(*args, cwd=None, timeout=300):
    env = {**os.environ, "GPUBK_DEVICE": "cpu", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "gpubk", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


def readme_example() -> tuple[str, list[str]]:
    """The README's `my_cases.py` and the command it is run with."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", README.read_text(), flags=re.S)
    (code,) = [text for lang, text in blocks if lang == "python" and "my_cases.py" in text]
    (command,) = [text for lang, text in blocks if lang == "bash" and "--cases" in text]
    return code, shlex.split(command)


def test_the_readme_example_runs_through_the_cli(tmp_path):
    code, command = readme_example()
    (tmp_path / "my_cases.py").write_text(code)
    assert command[:3] == ["gpubk", "bench", "--cases"] and "--quick" in command
    run = gpubk_cmd(*command[1:], "--json", "out.json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert not [r for r in rows if "error" in r]
    # Both implementations at both quick sizes; 2x + y reads two float32 arrays, writes one.
    assert sorted((r["size"], r["impl"]) for r in rows) == [
        ("(1048576,)", "mine"), ("(1048576,)", "numpy"), ("(65536,)", "mine"),
        ("(65536,)", "numpy")]
    for r in rows:
        n = int(r["size"].strip("(,)"))
        assert r["op"] == "scaled add" and r["work"] == 3 * 4 * n and r["unit"] == "B/s"
        assert r["rate"] == pytest.approx(r["work"] / r["seconds"])
        # compared with a copy of as many bytes: 3 * 4 * 65536 = 768 KiB, 3 * 4 * 2**20 = 12 MiB
        assert r["ceiling"] == {65536: "copy 768 KiB", 1 << 20: "copy 12 MiB"}[n]
        assert r["fraction_of_ceiling"] > 0
    assert (tmp_path / "scaled_add.png").read_bytes()[:4] == b"\x89PNG"
    assert "scaled add" in run.stdout and "mine" in run.stdout


def test_the_readme_kernel_computes_what_it_claims(tmp_path):
    code, _ = readme_example()
    namespace = {}
    before = dict(harness.CASES)
    try:
        exec(compile(code, "my_cases.py", "exec"), namespace)
    finally:
        harness.CASES.clear()
        harness.CASES.update(before)
    x, y = np.arange(5, dtype=np.float32), np.full(5, 0.5, np.float32)
    out = np.empty_like(x)
    namespace["scaled_add"](np.float32(2), x, y, out)
    np.testing.assert_array_equal(out, 2 * x + y)


def test_user_cases_run_after_the_built_in_ones(tmp_path):
    path = tmp_path / "cases.py"
    path.write_text("from gpubk.bench import case\n\n"
                    "@case('mine: sum', sizes=[(8,)], quick_sizes=[(4,)])\n"
                    "def total(ctx, size):\n"
                    "    x = ctx.normal(size)\n"
                    "    return x.nbytes, {'numpy': lambda: x.sum()}\n")
    harness.load_builtin_cases()
    builtins = list(harness.CASES)
    try:
        assert harness.load_case_file(str(path)) == ["mine: sum"]
        assert list(harness.CASES) == builtins + ["mine: sum"]
        result = harness.run(only=["mine: sum"], quick=True, device="cpu")
    finally:
        harness.CASES.pop("mine: sum", None)
    (row,) = result["rows"]
    assert (row["op"], row["size"], row["impl"], row["work"]) == ("mine: sum", "(4,)", "numpy",
                                                                  16)


@pytest.mark.parametrize("text,message", [
    ("from gpubk.bench import case\n\ndef f(:\n", "SyntaxError: invalid syntax (bad.py:3)"),
    ("import numpy\nnumpy.nope()\n",
     "AttributeError: module 'numpy' has no attribute 'nope' (bad.py:2)"),
    ("import numpy as np\n", "registers no case (decorate a function with @case"),
    ("from gpubk.bench import case\n\n@case('softmax', sizes=[1], quick_sizes=[1])\n"
     "def mine(ctx, size):\n    return 1, {}\n",
     "ValueError: a case named 'softmax' is already registered (bad.py:3)"),
    ("from gpubk.bench import case\n\n@case('x', sizes=[1], quick_sizes=[1], unit='s')\n"
     "def mine(ctx, size):\n    return 1, {}\n",
     "ValueError: case 'x': unit must be one of ('B', 'FLOP'), got 's' (bad.py:3)"),
])
def test_a_bad_cases_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "bad.py"
    path.write_text(text)
    run = gpubk_cmd("bench", "--quick", "--cases", str(path), "--json", str(tmp_path / "o.json"))
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"gpubk bench: --cases {path}") and message in line, line
    assert not (tmp_path / "o.json").exists() and run.stdout == ""


def test_a_failing_cases_file_leaves_no_case_registered(tmp_path):
    path = tmp_path / "half.py"
    path.write_text("from gpubk.bench import case\n\n"
                    "@case('half', sizes=[1], quick_sizes=[1])\n"
                    "def half(ctx, size):\n    return 1, {}\n\n"
                    "raise RuntimeError('later mistake')\n")
    with pytest.raises(harness.CaseFileError, match="RuntimeError: later mistake .half.py:7."):
        harness.load_case_file(str(path))
    assert "half" not in harness.CASES
