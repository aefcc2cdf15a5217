"""The `gpubk` command: `gpubk info`, `gpubk demo`, `gpubk bench`, `gpubk walkthrough`."""
from __future__ import annotations

import argparse
import sys


def _bench(args) -> int:
    from .bench import harness  # noqa: PLC0415 (imports the benchmark only when asked)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    try:
        result = harness.run(only=only, quick=args.quick, device=args.device)
    except KeyError as err:
        raise SystemExit(f"gpubk bench: {err.args[0]}") from None
    print(harness.table(result))
    for path, write in ((args.json, harness.write_json), (args.plot, harness.plot)):
        if path:
            try:
                write(result, path)
            except OSError as err:
                raise SystemExit(f"gpubk bench: cannot write {path}: {err.strerror}") from None
            print(f"wrote {path}")
    return 0


def _demo(args) -> int:
    from . import demo  # noqa: PLC0415
    return demo.main(args)


def _info(args) -> int:
    from . import info  # noqa: PLC0415
    print(info.report())
    return 0


def _walkthrough(args) -> int:
    from .examples import walkthrough  # noqa: PLC0415
    walkthrough.main()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpubk", description="The Keras 2 backend on a GPU or NumPy.")
    sub = p.add_subparsers(dest="command", metavar="{info,demo,bench,walkthrough}")
    sub.add_parser("info", help="versions, the device chosen and why, GPU details, kernel cache"
                   ).set_defaults(run=_info)
    demo = sub.add_parser("demo", help="train a classifier of handwritten digits with gpubk ops")
    demo.set_defaults(run=_demo)
    demo.add_argument("--device", help="cpu, gpu or gpu:N (default: the one gpubk picks)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                      help="an MLP, or a small convnet (conv2d and pool2d)")
    demo.add_argument("--hidden", type=int, default=128, help="units in each MLP hidden layer")
    demo.add_argument("--lr", type=float, default=0.003, help="Adam's learning rate")
    demo.add_argument("--subset", type=int, help="train on the first N training images only")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="gpubk-demo", help="folder for the plot and the weights")
    bench = sub.add_parser("bench", help="time the kernels against NumPy, CuPy, PyTorch, JAX")
    bench.set_defaults(run=_bench)
    bench.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    bench.add_argument("--only", help="comma-separated case names")
    bench.add_argument("--device", help="cpu, gpu or gpu:N (default: the one gpubk picks)")
    bench.add_argument("--json", help="write the rows as JSON to this path")
    bench.add_argument("--plot", help="write a PNG plot of throughput against size")
    sub.add_parser("walkthrough", help="run the Keras-backend walkthrough on gpubk"
                   ).set_defaults(run=_walkthrough)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 0
    device = getattr(args, "device", None)
    if device:
        from . import devices  # noqa: PLC0415
        try:
            devices.parse(device)
        except (ValueError, devices.DeviceError) as err:
            raise SystemExit(f"gpubk {args.command}: {err}") from None
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
