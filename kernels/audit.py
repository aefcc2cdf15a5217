"""The kernel audit: every `@cuda.jit` kernel compiled to PTX and cubin for real GPU
architectures, without a GPU, and what the compiled code says about it.

The simulator runs kernels as Python and cannot see what the compiler does: a float64 literal
that turns float32 math into float64 (1/64 of the speed on consumer GPUs), registers, spills,
local memory. libNVVM (Python to PTX) and nvJitLink (PTX to cubin, with ptxas's report) come
from pip (`numba-cuda[cu13]`) and need no GPU or driver.

Each family's CUDA module (`cuda/<family>.py`) declares what it launches in a module-level
`LAUNCHES`: kernel attribute name -> Numba signature strings, one per dtype it is launched with.
Kernels generated at run time (fused kernels) are added with `register`.

Runs in a process where Numba's CUDA simulator is off (`NUMBA_ENABLE_CUDASIM` unset or 0): the
simulator replaces `cuda.jit` with Python.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import re

FAMILIES = ("softmax", "crossentropy", "elementwise", "fused")

_registered: list = []  # (module, name, signatures) added by `register`

# PTX opcodes that compute (as opposed to moving bits): a `.f64` on one of these is float64
# arithmetic. Loads, stores and moves of float64 are counted apart.
_MATH_OPS = frozenset({
    "add", "sub", "mul", "mad", "fma", "div", "rcp", "sqrt", "rsqrt", "ex2", "lg2", "sin",
    "cos", "tanh", "min", "max", "neg", "abs", "setp", "selp", "cvt", "testp", "copysign",
    "set", "slct"})
_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][a-z0-9]*)((?:\.[a-z0-9]+)*)")


@dataclasses.dataclass
class Row:
    """What one (kernel, signature, architecture) compiles to."""

    module: str
    name: str
    signature: str
    arch: str
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    local_bytes: int | None = None  # stack frame + lmem: both live in slow local memory
    shared_bytes: int | None = None
    f64_math: int | None = None     # float64 arithmetic instructions in the PTX
    f64_moves: int | None = None    # float64 loads, stores and moves
    error: str | None = None

    @property
    def float_arrays(self) -> str:
        """The float type of the signature's arrays ('float32', 'float16', 'float64' or '')."""
        found = re.findall(r"(float16|float32|float64)\[", self.signature)
        return found[0] if found else ""


def register(module: str, name: str, signatures) -> None:
    """Adds a kernel that no family declares (a generated one) to the audit."""
    _registered.append((module, name, list(signatures)))


def declared() -> list:
    """(module, kernel name, signatures) for every kernel to audit."""
    found = []
    for family in FAMILIES:
        module = importlib.import_module(f"gpubk.kernels.cuda.{family}")
        found += [(module.__name__, name, sigs) for name, sigs in module.LAUNCHES.items()]
    return found + _registered


def count_f64(ptx: str) -> tuple:
    """(float64 arithmetic instructions, other float64 instructions) in PTX text."""
    math_count = other = 0
    for line in ptx.splitlines():
        match = _INSTRUCTION.match(line)
        if not match or "f64" not in match.group(2).split("."):
            continue
        if match.group(1) in _MATH_OPS:
            math_count += 1
        else:
            other += 1
    return math_count, other


def compute_capability(arch: str) -> tuple:
    """'sm_90' -> (9, 0); 'sm_120' -> (12, 0)."""
    digits = arch.removeprefix("sm_")
    if not (arch.startswith("sm_") and digits.isdigit() and len(digits) >= 2):
        raise ValueError(f"kernels: unknown architecture {arch!r}; expected e.g. sm_80, sm_90")
    return int(digits[:-1]), int(digits[-1])


def _target_device(cc: tuple):
    """Device functions ask the current device for its compute capability while they are
    typed; without a GPU there is none, so answer with the target's."""
    from numba.cuda import dispatcher  # noqa: PLC0415 (only once the simulator is ruled out)

    class Target:
        compute_capability = cc
    dispatcher.get_current_device = lambda: Target()


def _ptxas_report(ptx: str, arch: str) -> dict:
    """Links PTX to a cubin with nvJitLink and reads ptxas's verbose report."""
    from cuda.bindings import nvjitlink  # noqa: PLC0415

    handle = nvjitlink.create(2, [f"-arch={arch}", "-verbose"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    text = log.decode(errors="replace")

    def number(pattern: str) -> int:
        match = re.search(pattern, text)
        return int(match.group(1)) if match else 0
    return dict(registers=number(r"[Uu]sed (\d+) registers"),
                spill_stores=number(r"(\d+) bytes spill stores"),
                spill_loads=number(r"(\d+) bytes spill loads"),
                local_bytes=number(r"(\d+) bytes stack frame") + number(r"(\d+) bytes lmem"),
                shared_bytes=number(r"(\d+) bytes smem"))


def audit(archs) -> list:
    """Compiles every declared kernel for every signature and architecture; one Row each
    (with `error` set where compilation failed)."""
    from numba import config  # noqa: PLC0415
    if config.ENABLE_CUDASIM:
        raise RuntimeError("kernels: the audit needs the real CUDA compiler; unset "
                           "NUMBA_ENABLE_CUDASIM (the simulator replaces cuda.jit with Python)")
    from numba import cuda  # noqa: PLC0415

    rows = []
    # PTX once per (kernel, signature), for the oldest architecture (PTX runs on newer ones);
    # ptxas, through nvJitLink, then compiles it for each architecture.
    oldest = compute_capability(min(archs, key=compute_capability))
    _target_device(oldest)
    for module_name, name, signatures in declared():
        kernel = getattr(importlib.import_module(module_name), name)
        for signature in signatures:
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=oldest)
                error = None
            except Exception as err:  # a compile error is a finding, not a crash
                ptx, error = None, _describe(err)
            for arch in archs:
                row = Row(module_name, name, signature, arch, error=error)
                if ptx is not None:
                    row.f64_math, row.f64_moves = count_f64(ptx)
                    try:
                        for key, value in _ptxas_report(ptx, arch).items():
                            setattr(row, key, value)
                    except Exception as err:
                        row.error = _describe(err)
                rows.append(row)
    return rows


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


def problems(row: Row) -> list:
    """What is wrong with one row: a compile error, spills, local memory, or float64
    arithmetic in a kernel whose arrays are float32 or float16."""
    if row.error:
        return [row.error]
    found = []
    if row.spill_stores or row.spill_loads:
        found.append(f"spills {row.spill_stores} B stored, {row.spill_loads} B loaded")
    if row.local_bytes:
        found.append(f"{row.local_bytes} B of local memory")
    if row.float_arrays in ("float32", "float16") and row.f64_math:
        found.append(f"{row.f64_math} float64 arithmetic instructions in a "
                     f"{row.float_arrays} kernel")
    return found


def write_json(rows: list, path: str) -> None:
    """The rows as a JSON list of objects (module, name, signature, arch, the figures, and the
    row's problems)."""
    records = [dict(dataclasses.asdict(row), problems=problems(row)) for row in rows]
    with open(path, "w") as file:
        json.dump(records, file, indent=1)


def table(rows: list) -> str:
    """One line per (kernel, signature, architecture)."""
    head = f"{'kernel':<40} {'arch':<6} {'regs':>4} {'spill':>6} {'local':>6} {'smem':>6} " \
           f"{'f64':>5}  signature"
    lines = [head, "-" * len(head)]
    for r in rows:
        kernel = f"{r.module.removeprefix('gpubk.kernels.')}.{r.name}"
        if r.error:
            lines.append(f"{kernel:<40} {r.arch:<6} ERROR {r.error}  {r.signature}")
            continue
        lines.append(f"{kernel:<40} {r.arch:<6} {r.registers:>4} "
                     f"{r.spill_stores + r.spill_loads:>6} {r.local_bytes:>6} "
                     f"{r.shared_bytes:>6} {r.f64_math:>5}  {r.signature}")
    return "\n".join(lines)
