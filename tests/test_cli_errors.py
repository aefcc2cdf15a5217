"""Every user mistake at the command line is one line on stderr, never a traceback: exit status
2 for a bad argument, 1 for what the machine cannot do; and nothing is written then."""
import os
import re
import subprocess
import sys

import pytest

from gpubk import devices
from gpubk.demo import TRAIN_IMAGES


def gpubk_cmd(*args, device="cpu", cwd=None, timeout=120):
    env = {**os.environ, "GPUBK_DEVICE": device, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "gpubk", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


def _has_gpu() -> bool:
    try:
        devices.parse("gpu")
    except devices.DeviceError:
        return False
    return True


def assert_one_line_error(run, status: int, message: str) -> None:
    assert run.returncode == status, (run.returncode, run.stderr)
    assert run.stderr.splitlines() == [message], run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


@pytest.mark.parametrize("args,message", [
    (("--epochs", "0"), "--epochs must be a positive integer, got 0"),
    (("--epochs", "ten"), "--epochs must be a positive integer, got ten"),
    (("--batch-size", "0"), "--batch-size must be a positive integer, got 0"),
    (("--subset", "0"), "--subset must be a positive integer, got 0"),
    (("--subset", "-5"), "--subset must be a positive integer, got -5"),
    (("--subset", str(TRAIN_IMAGES + 1)),
     f"--subset must be at most {TRAIN_IMAGES} (the training images), got {TRAIN_IMAGES + 1}"),
    (("--hidden", "0"), "--hidden must be a positive integer, got 0"),
    (("--lr", "0"), "--lr must be a positive number, got 0"),
    (("--lr", "-0.1"), "--lr must be a positive number, got -0.1"),
    (("--lr", "nan"), "--lr must be a positive number, got nan"),
    (("--model", "rnn"), "--model invalid choice: 'rnn' (choose from 'mlp', 'cnn')"),
    (("--device", "tpu"),
     "--device: unknown device 'tpu'; expected 'cpu', 'gpu', 'gpu:N' or 'sim'"),
])
def test_demo_rejects_a_bad_argument_in_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    run = gpubk_cmd("demo", "--out", str(out), *args)
    assert_one_line_error(run, 2, f"gpubk demo: {message}")
    assert not out.exists()


@pytest.mark.parametrize("command", ["demo", "bench", "walkthrough"])
def test_an_unknown_gpubk_device_is_a_bad_argument_under_every_command(command):
    run = gpubk_cmd(command, device="tpu")
    assert_one_line_error(run, 2, f"gpubk {command}: GPUBK_DEVICE=tpu: unknown device 'tpu'; "
                                  "expected 'cpu', 'gpu', 'gpu:N' or 'sim'")


@pytest.mark.skipif(_has_gpu(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("command", ["demo", "bench", "walkthrough"])
def test_a_missing_gpu_is_an_environment_error_under_every_command(command, tmp_path):
    run = gpubk_cmd(command, device="gpu", cwd=tmp_path)
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"gpubk {command}: GPUBK_DEVICE=gpu: gpu:0 requested but ")
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not list(tmp_path.iterdir())  # the demo made no output folder
    flag = gpubk_cmd(command, "--device", "gpu") if command != "walkthrough" else None
    if flag is not None:  # the flag says the same, without the variable's name
        assert flag.returncode == 1
        assert flag.stderr.startswith(f"gpubk {command}: gpu:0 requested but ")


def test_device_flag_overrides_a_bad_gpubk_device(tmp_path):
    run = gpubk_cmd("demo", "--device", "cpu", "--epochs", "1", "--subset", "64",
                    "--out", str(tmp_path / "out"), device="tpu")
    assert run.returncode == 0, run.stderr
    assert "device cpu" in run.stdout


def test_an_unwritable_output_folder_is_an_environment_error():
    run = gpubk_cmd("demo", "--out", "/proc/gpubk-demo", "--epochs", "1")
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith("gpubk demo: cannot write to '/proc/gpubk-demo'")


@pytest.mark.parametrize("args,status,message", [
    (("--only", "softmax,nope"), 2, "--only: unknown case(s) nope; known: tiny ops, "),
    (("--only", " , "), 2, "--only names no case, got ' , '"),
    (("--json", "/proc/no/such/out.json"), 1,
     "cannot write --json /proc/no/such/out.json: No such file or directory (/proc/no/such)"),
    (("--plot", "{tmp}"), 2, "--plot {tmp} is a folder; give a file name"),
    (("--cases", "{tmp}/missing.py"), 2, "--cases {tmp}/missing.py: no such file"),
])
def test_bench_rejects_bad_arguments_before_running(tmp_path, args, status, message):
    args = [a.format(tmp=tmp_path) for a in args]
    run = gpubk_cmd("bench", "--quick", *args)
    assert run.returncode == status, run.stderr
    assert run.stderr.startswith(f"gpubk bench: {message.format(tmp=tmp_path)}")
    assert len(run.stderr.splitlines()) == 1 and run.stdout == ""


def test_argparse_errors_are_one_line_too():
    assert_one_line_error(gpubk_cmd("serve"), 2,
                          "gpubk: invalid choice: 'serve' (choose from 'info', 'demo', 'bench', "
                          "'kernels', 'walkthrough')")
    assert_one_line_error(gpubk_cmd("demo", "--bogus"), 2, "gpubk: unrecognized arguments: "
                                                           "--bogus")


@pytest.mark.parametrize("command,defaults", [
    ("demo", ["(default: 30)", "(default: 32)", "(default: mlp)", "(default: 128)",
              "(default: 0.003)", f"(default: all {TRAIN_IMAGES})", "(default: 0)",
              "(default: gpubk-demo for --model mlp, gpubk-demo-cnn for --model cnn)"]),
    ("bench", ["(default: the full sizes)", "(default: every case)", "(default: none)",
               "(default: built-in cases only)"]),
])
def test_help_shows_every_default(command, defaults):
    run = gpubk_cmd(command, "--help")
    assert run.returncode == 0
    options = run.stdout.split("options:")[1]
    entries = [" ".join(e.split()) for e in re.split(r"\n  (?=-)", options) if e.strip()]
    assert len(entries) >= (10 if command == "demo" else 7)  # --help and each option
    for entry in entries:
        if not entry.startswith("-h, --help"):
            assert "(default: " in entry, entry
    assert all(any(d in e for e in entries) for d in defaults)
    assert any(e.startswith("--device NAME") and "(default: GPUBK_DEVICE if set" in e
               for e in entries)
