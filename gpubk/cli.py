"""The `gpubk` command: `gpubk info`, `gpubk demo`, `gpubk bench`, `gpubk kernels`,
`gpubk walkthrough`.

A user's mistake is one line on stderr, never a traceback: exit status 2 for a bad argument (as
argparse), 1 for what this machine cannot do (no GPU, a folder it cannot write). Arguments and
the device are checked before any work starts, so an error leaves nothing behind.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
import tempfile
import textwrap

from . import demo as demo_module

BAD_ARGUMENT, ENVIRONMENT = 2, 1  # exit statuses
_AUDIT_ARCHS = ("sm_80", "sm_90")  # A100 and H100/H200: what `gpubk kernels` compiles for
DEVICE_HELP = ("cpu, gpu, gpu:N or sim (default: GPUBK_DEVICE if set, else the GPU if CuPy "
               "sees one, else cpu)")


class CommandError(Exception):
    """A mistake reported as `gpubk COMMAND: message`, exiting with `status`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`gpubk demo: --epochs must be a positive integer,
    got 0`) instead of the usage followed by the error."""

    def error(self, message: str):
        message = re.sub(r"^argument (-\S+): ", r"\1 ", message)  # an option: name it
        message = re.sub(r"^argument \S+: ", "", message)  # the subcommand's {a,b,c} metavar
        self.exit(BAD_ARGUMENT, f"{self.prog}: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default; the help of an option without one (None, or a flag that is
    off) says itself what happens then."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)  # gpubk-demo


def _positive(kind: type, noun: str):
    """An argparse type accepting a finite number of `kind` above zero."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}, got {text}")
        return value
    return convert


positive_int = _positive(int, "integer")
positive_number = _positive(float, "number")


def _check_device(args) -> None:
    """Fails in one line, before any work, when the device to use (--device, else the default
    that GPUBK_DEVICE or the machine gives) is unknown (status 2) or absent here (status 1)."""
    from . import devices  # noqa: PLC0415
    name = getattr(args, "device", None)
    try:
        if name:
            devices.parse(name)
        else:
            devices.default_device()
    except ValueError as err:
        where = "--device: " if name else ""
        raise CommandError(where + str(err).removeprefix("device: "), BAD_ARGUMENT) from None
    except devices.DeviceError as err:
        raise CommandError(str(err), ENVIRONMENT) from None


def _require(module: str, purpose: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise CommandError(f"{purpose} needs {module}; install gpubk with the '{extra}' extra",
                           ENVIRONMENT)


def _check_can_write(path: str, option: str) -> None:
    """Fails before the run, not after it, when `path` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{option} {path} is a folder; give a file name", BAD_ARGUMENT)
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise CommandError(f"cannot write {option} {path}: {err.strerror} ({folder})",
                           ENVIRONMENT) from None


def _case_names(only: str | None) -> list[str] | None:
    if only is None:
        return None
    names = [name.strip() for name in only.split(",") if name.strip()]
    if not names:
        raise CommandError(f"--only names no case, got {only!r}", BAD_ARGUMENT)
    return names


def _bench(args) -> int:
    from .bench import harness  # noqa: PLC0415 (imports the benchmark only when asked)
    for path, option in ((args.json, "--json"), (args.plot, "--plot")):
        if path:
            _check_can_write(path, option)
    if args.plot:
        _require("matplotlib", "--plot", "bench")
    if args.cases:
        try:
            harness.load_case_file(args.cases)
        except harness.CaseFileError as err:
            raise CommandError(f"--cases {err}", BAD_ARGUMENT) from None
    only = _case_names(args.only)
    unknown = harness.unknown_cases(only or [])
    if unknown:
        raise CommandError(f"--only: unknown case(s) {', '.join(unknown)}; known: "
                           f"{', '.join(harness.CASES)}", BAD_ARGUMENT)
    result = harness.run(only=only, quick=args.quick, device=args.device, dtype=args.dtype)
    print(harness.table(result))
    for path, write in ((args.json, harness.write_json), (args.plot, harness.plot)):
        if path:
            try:
                write(result, path)
            except OSError as err:
                raise CommandError(f"cannot write {path}: {err.strerror}", ENVIRONMENT) from None
            print(f"wrote {path}")
    return 0


def _demo(args) -> int:
    if args.subset is not None and args.subset > demo_module.TRAIN_IMAGES:
        raise CommandError(f"--subset must be at most {demo_module.TRAIN_IMAGES} (the training "
                           f"images), got {args.subset}", BAD_ARGUMENT)
    _require("sklearn", "the demo", "examples")  # its digits
    _require("matplotlib", "the demo", "examples")  # its plot
    return demo_module.main(args)


def _info(args) -> int:
    from . import info  # noqa: PLC0415
    return info.main()


def _kernels(args) -> int:
    """The kernel audit (gpubk.kernels.audit): exit status 1 when it finds a problem."""
    archs = [arch.strip() for arch in args.arch.split(",") if arch.strip()]
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        raise CommandError("the audit compiles for real GPUs, and NUMBA_ENABLE_CUDASIM is set "
                           "(the simulator replaces the compiler); unset it", ENVIRONMENT)
    _require("numba_cuda", "the kernel audit", "audit")
    from numba.cuda.cudadrv import nvvm  # noqa: PLC0415
    from .kernels import audit  # noqa: PLC0415
    try:
        for arch in archs or [args.arch]:
            audit.compute_capability(arch)
    except ValueError as err:
        raise CommandError(f"--arch: {str(err).removeprefix('kernels: ')}", BAD_ARGUMENT) from None
    if not nvvm.is_available():
        raise CommandError("the audit needs libNVVM, which the 'audit' extra (numba-cuda[cu13]) "
                           "brings from pip", ENVIRONMENT)
    if args.json:
        _check_can_write(args.json, "--json")
    rows = audit.audit(archs)
    print(audit.table(rows))
    found = [(row, problem) for row in rows for problem in audit.problems(row)]
    for row, problem in found:
        print(f"problem: {row.module}.{row.name} {row.signature} {row.arch}: {problem}")
    print(f"{len(rows)} compiled kernel(s), {len(found)} problem(s)")
    if args.json:
        audit.write_json(rows, args.json)
        print(f"wrote {args.json}")
    return 1 if found else 0


def _walkthrough(args) -> int:
    from .examples import walkthrough  # noqa: PLC0415
    walkthrough.main()
    return 0


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="train a classifier of handwritten digits with gpubk ops",
                          formatter_class=_HelpFormatter)
    demo.set_defaults(run=_demo)
    add = demo.add_argument
    add("--device", metavar="NAME", help=DEVICE_HELP)
    add("--epochs", type=positive_int, default=30, metavar="N", help="passes over the data")
    add("--batch-size", type=positive_int, default=32, metavar="N", help="images per step")
    add("--model", choices=("mlp", "cnn"), default="mlp",
        help="an MLP, or a small convnet (conv2d and pool2d)")
    add("--hidden", type=positive_int, default=128, metavar="N",
        help="units in each MLP hidden layer")
    add("--lr", type=positive_number, default=0.003, metavar="RATE", help="Adam's learning rate")
    add("--subset", type=positive_int, metavar="N",
        help=f"train on the first N training images only (default: all "
             f"{demo_module.TRAIN_IMAGES})")
    add("--seed", type=int, default=0, metavar="N", help="for the split, weights and order")
    defaults = ", ".join(f"{folder} for --model {model}"
                         for model, folder in demo_module.DEFAULT_OUT.items())
    add("--out", metavar="FOLDER",
        help=f"folder for the plot and the weights (default: {defaults})")


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="time the kernels against NumPy, CuPy, PyTorch, JAX",
                           formatter_class=_HelpFormatter)
    bench.set_defaults(run=_bench)
    add = bench.add_argument
    add("--quick", action="store_true",
        help="small sizes, about half a minute (default: the full sizes)")
    add("--only", metavar="NAMES", help="comma-separated case names (default: every case)")
    add("--cases", metavar="FILE",
        help="also run the @case functions of this Python file (default: built-in cases only)")
    add("--device", metavar="NAME", help=DEVICE_HELP)
    add("--dtype", choices=("float32", "float16", "float64"), default="float32",
        help="of the inputs (float16 runs gpubk's kernels in float32, as they compute it)")
    add("--json", metavar="FILE", help="write the rows as JSON to this path (default: none)")
    add("--plot", metavar="FILE",
        help="write a PNG plot of throughput against size (default: none)")


def _add_kernels(sub) -> None:
    kernels = sub.add_parser(
        "kernels", formatter_class=_HelpFormatter,
        help="compile every CUDA kernel for real GPUs (no GPU needed) and report registers, "
             "spills, local and shared memory, float64 instructions; exit 1 on a problem")
    kernels.set_defaults(run=_kernels)
    kernels.add_argument("--arch", default=",".join(_AUDIT_ARCHS), metavar="LIST",
                         help="comma-separated GPU architectures")
    kernels.add_argument("--json", metavar="FILE",
                         help="write one object per (kernel, signature, arch) (default: none)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gpubk", description="The Keras 2 backend on a GPU or NumPy.",
                formatter_class=_HelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{info,demo,bench,kernels,walkthrough}")
    sub.add_parser("info", help="versions, the device chosen and why, GPU details, kernel cache",
                   formatter_class=_HelpFormatter).set_defaults(run=_info)
    _add_demo(sub)
    _add_bench(sub)
    _add_kernels(sub)
    sub.add_parser("walkthrough", help="run the Keras-backend walkthrough on gpubk",
                   formatter_class=_HelpFormatter).set_defaults(run=_walkthrough)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs `gpubk ARGS`; returns the exit status."""
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    try:
        # info reports a bad device rather than stopping at it; the audit needs no device
        if args.command not in ("info", "kernels"):
            _check_device(args)
        return args.run(args)
    except CommandError as err:
        print(f"gpubk {args.command}: {err}", file=sys.stderr)
        return err.status
    except KeyboardInterrupt:
        print(f"gpubk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
