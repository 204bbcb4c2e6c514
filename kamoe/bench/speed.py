"""`kamoe bench speed`: KANLinear forward+backward against nn.Linear on the same expanded width.

For each shape (batch, in, out) the reference is ``nn.Linear(in * (G + k + 1), out)``: the dense
layer that does the same matmul as a KAN layer whose features [act(x), B_1(x) .. B_{G+k}(x)] are
already computed. Both get an input that requires grad, so backward also computes the input
gradient in both. Median of ``--repeats`` timed runs after warm-up, with 2 torch threads.
Peak memory is the growth of the process's peak resident set (VmHWM) over warm-up and timed runs,
after the layer and its input exist, in a fresh subprocess per case so cases do not hide each
other's peaks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time

from kamoe.errors import UserError

SHAPES = [(1024, 64, 64), (4096, 8, 16), (256, 256, 256), (100, 1000, 1000)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per case (30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--grid-size", type=int, default=5)
    parser.add_argument("--spline-order", type=int, default=3)
    parser.add_argument("--shapes", default=None,
                        help="batch,in,out triples separated by ';' (default: the issue's 4)")
    parser.add_argument("--variant", default="uniform",
                        choices=["uniform", "adaptive", "no-scaler", "torch-path"],
                        help="KAN layer variant: fresh uniform knots (default), quantile knots "
                             "after update_grid (general de Boor path), no spline scaler, or "
                             "uniform knots forced onto the torch path (no native kernels)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON


def _peak_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _one_case(spec: dict) -> dict:
    import torch
    from torch import nn

    from kamoe.nn.kan import KANLinear, torch_path

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    b, i, o = spec["shape"]
    g, k = spec["grid_size"], spec["spline_order"]
    if spec["kind"] == "kan":
        layer = KANLinear(i, o, grid_size=g, spline_order=k,
                          spline_scaler=spec["variant"] != "no-scaler")
        x = (torch.rand(b, i) * 2 - 1).requires_grad_()
        if spec["variant"] == "adaptive":
            layer.update_grid(torch.randn(b, i) * 0.5, grid_eps=0.02)
    else:
        layer = nn.Linear(i * (g + k + 1), o)
        x = torch.randn(b, i * (g + k + 1)).requires_grad_()

    mode = torch_path if spec["variant"] == "torch-path" else contextlib.nullcontext

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        with mode():
            layer(x).sum().backward()

    path = None
    if spec["kind"] == "kan":  # ask the layer which path this forward takes
        with mode():
            path = "native kernels" if layer._native_plan(x.detach()) else "torch path"
    before = _peak_kib()  # layer and input exist; warm-up allocations count as the layer's
    for _ in range(spec["warmup"]):
        step()
    times = []
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"median_ms": 1e3 * statistics.median(times),
            "q1_ms": 1e3 * statistics.quantiles(times, n=4)[0],
            "q3_ms": 1e3 * statistics.quantiles(times, n=4)[2],
            "peak_growth_mib": max(0, _peak_kib() - before) / 1024, "path": path,
            "peak_mib": _peak_kib() / 1024}


def _run_case(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "kamoe", "bench", "speed", "--case",
                          json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    if args.case:
        print(json.dumps(_one_case(json.loads(args.case))))
        return 0
    if args.repeats < 3:
        raise UserError("--repeats must be at least 3 (the median needs several runs)")
    shapes = SHAPES
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
            assert all(len(s) == 3 and min(s) > 0 for s in shapes)
        except (ValueError, AssertionError) as err:
            raise UserError("--shapes must look like '1024,64,64;4096,8,16'") from err
    rows, paths = [], set()
    for shape in shapes:
        base = {"shape": list(shape), "threads": args.threads, "grid_size": args.grid_size,
                "spline_order": args.spline_order, "warmup": args.warmup,
                "variant": args.variant}
        # Interleave KAN and Linear runs so slow drift on a shared machine hits both alike.
        kan, lin = [], []
        for _ in range(2):
            kan.append(_run_case({**base, "kind": "kan", "repeats": args.repeats}))
            lin.append(_run_case({**base, "kind": "linear", "repeats": args.repeats}))
        paths.update(r["path"] for r in kan)
        k = min(kan, key=lambda r: r["median_ms"])
        lo = min(lin, key=lambda r: r["median_ms"])
        rows.append({"batch": shape[0], "in": shape[1], "out": shape[2],
                     "kan_ms": k["median_ms"], "linear_ms": lo["median_ms"],
                     "ratio": k["median_ms"] / lo["median_ms"],
                     "kan_peak_growth_mib": k["peak_growth_mib"],
                     "linear_peak_growth_mib": lo["peak_growth_mib"],
                     "kan_iqr_ms": [k["q1_ms"], k["q3_ms"]],
                     "linear_iqr_ms": [lo["q1_ms"], lo["q3_ms"]]})
        r = rows[-1]
        print(f"({r['batch']}, {r['in']}, {r['out']}): KANLinear {r['kan_ms']:.2f} ms, "
              f"Linear {r['linear_ms']:.2f} ms, ratio {r['ratio']:.2f}", file=sys.stderr,
              flush=True)
    path = " and ".join(sorted(paths))  # which KANLinear path the cases ran
    if args.json:
        print(json.dumps({"variant": args.variant, "threads": args.threads, "path": path,
                          "rows": rows}))
        return 0
    print(f"KANLinear ({args.variant} knots, grid {args.grid_size}, order {args.spline_order}, "
          f"{path}) vs nn.Linear(in*(G+k+1), out); forward+backward, median of {args.repeats}, "
          f"{args.threads} threads")
    print("| batch | in | out | KANLinear ms | Linear ms | ratio | KAN peak +MiB "
          "| Linear peak +MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['in']} | {r['out']} | {r['kan_ms']:.2f} | "
              f"{r['linear_ms']:.2f} | {r['ratio']:.2f} | {r['kan_peak_growth_mib']:.1f} | "
              f"{r['linear_peak_growth_mib']:.1f} |")
    return 0
