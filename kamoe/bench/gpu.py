"""`kamoe bench gpu`: KANLinear forward+backward and a small training on CUDA, beside the CPU.

For whoever has a CUDA GPU (this project's CI machine has none; there the command says so and
exits 2). Part 1: for each shape (batch, in, out) the median time of one forward+backward of a
KANLinear (input gradient included) on the GPU, synchronised, and the same on the CPU with
``--threads`` torch threads (the CPU runs the native kernels when they are built). Part 2: one
seeded fit of a registry model on a generated dataset (``friedman1`` by default) with the
recipe's schedule, on the GPU and on the CPU: wall time, epochs and the test metrics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from kamoe.errors import UserError

SHAPES = [(4096, 16, 16), (1024, 64, 64), (256, 256, 256)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda", help="the CUDA device: cuda or cuda:N")
    parser.add_argument("--shapes", default=None,
                        help="batch,in,out triples separated by ';' (default: 3 shapes)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (2)")
    parser.add_argument("--dataset", default="friedman1", help="dataset of the small training")
    parser.add_argument("--model", default="kan", help="registry model of the small training")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the small training")
    parser.add_argument("--no-cpu", action="store_true", help="time the GPU only")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cuda_device(name: str):
    """The torch CUDA device ``name`` names; UserError saying a CUDA GPU is needed otherwise."""
    import torch

    from kamoe.train import TrainingError, resolve_device

    if not name.startswith("cuda"):
        raise UserError(f"bench gpu times CUDA devices only; --device must be cuda or cuda:N, "
                        f"got {name!r}")
    if not torch.cuda.is_available():
        raise UserError("bench gpu needs a CUDA device and torch sees none on this machine; run "
                        "it where `python -c 'import torch; print(torch.cuda.is_available())'` "
                        "prints True")
    try:
        return resolve_device(name)
    except TrainingError as err:
        raise UserError(str(err)) from None


def _shapes(text: str | None) -> list[tuple[int, int, int]]:
    if not text:
        return SHAPES
    try:
        shapes = [tuple(int(v) for v in s.split(",")) for s in text.split(";")]
    except ValueError:
        shapes = []
    if not shapes or not all(len(s) == 3 and min(s) > 0 for s in shapes):
        raise UserError("--shapes must look like '1024,64,64;4096,16,16'")
    return shapes


def time_layer(shape: tuple[int, int, int], device, repeats: int, warmup: int) -> dict:
    """Median and quartiles (ms) of one KANLinear forward+backward of ``shape`` on ``device``."""
    import torch

    from kamoe.nn.kan import KANLinear

    b, i, o = shape
    torch.manual_seed(0)
    layer = KANLinear(i, o).to(device)
    x = (torch.rand(b, i, device=device) * 2 - 1).requires_grad_()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()

    path = "native kernels" if layer._native_plan(x.detach()) else "torch path"
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    q = statistics.quantiles(times, n=4)
    return {"shape": list(shape), "device": str(device), "path": path,
            "median_ms": 1e3 * statistics.median(times), "q1_ms": 1e3 * q[0],
            "q3_ms": 1e3 * q[2]}


def time_training(dataset_name: str, model_name: str, epochs: int, device: str) -> dict:
    """One seeded fit (seed 0, the recipe's schedule, ``epochs`` at most) on ``device``."""
    from kamoe import recipes
    from kamoe.data import load
    from kamoe.models import build_for
    from kamoe.train import fit, set_seed

    ds = load(dataset_name, seed=0)
    set_seed(0)
    model = build_for(model_name, ds, **recipes.model_config(model_name, ds))
    cfg = recipes.training_config(model_name, ds, seed=0, epochs=epochs, device=device)
    hist = fit(model, ds, cfg)
    return {"dataset": ds.name, "model": model_name, "device": hist.device,
            "optimizer": cfg.optimizer, "epochs": len(hist.epochs),
            "seconds": round(hist.seconds, 3), "metrics": hist.metrics}


def run(args: argparse.Namespace) -> int:
    import torch

    gpu = cuda_device(args.device)
    if args.repeats < 3:
        raise UserError("--repeats must be at least 3 (the median needs several runs)")
    shapes = _shapes(args.shapes)
    torch.set_num_threads(max(1, args.threads))
    devices = [gpu] if args.no_cpu else [gpu, torch.device("cpu")]
    layers = [time_layer(s, d, args.repeats, args.warmup) for s in shapes for d in devices]
    training = [time_training(args.dataset, args.model, args.epochs, str(d)) for d in devices]
    result = {"gpu": torch.cuda.get_device_name(gpu), "torch": torch.__version__,
              "cpu_threads": args.threads, "layers": layers, "training": training}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['gpu']} (torch {result['torch']}); CPU with {args.threads} thread(s)")
    print(f"{'batch,in,out':>16} {'device':>8} {'median ms':>10} {'q1-q3 ms':>16}  path")
    for r in layers:
        print(f"{','.join(map(str, r['shape'])):>16} {r['device']:>8} {r['median_ms']:>10.3f} "
              f"{r['q1_ms']:>7.3f}-{r['q3_ms']:<8.3f}  {r['path']}")
    for r in training:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
        print(f"train {r['model']} on {r['dataset']} on {r['device']}: {r['epochs']} epochs "
              f"({r['optimizer']}) in {r['seconds']:.2f} s; test {metrics}")
    return 0
