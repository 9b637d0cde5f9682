"""Export: the export job's time per format, and inference throughput of what it writes.

The digits example's two models (the MLP and the small CNN of configs/digits_mlp.py and
configs/digits_cnn.py, as their configs build them) are exported by the export job's own
functions (dltemplate.jobs.export: `export_pt2`, `export_onnx`, which also reload what they
wrote). Then the checkpoint model in eager PyTorch (eval, no_grad), the exported program
(`torch.export.load(...).module()`) and the ONNX model in onnxruntime (CPU) each predict the
same random batches of 1, 64 and 1,024 samples, one thread each, interleaved, the order
flipped every repetition. Samples per second of wall time; the ratios are paired per
repetition.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, command_line, fmt, parser, stats

CONFIGS = {"MLP": "configs/digits_mlp.py", "CNN": "configs/digits_cnn.py"}
RUNTIMES = ("eager PyTorch", "exported program (pt2)", "onnxruntime")


def built_model(config: str) -> Any:
    from dltemplate.config.build import build_run
    from dltemplate.jobs.export import Forward

    return Forward(build_run(config).task_wrapper).eval()


def exports(model: Any, folder: Path) -> tuple[dict[str, float], dict[str, Callable]]:
    """Seconds per format, and the callables of each runtime."""
    import onnxruntime
    import torch

    from dltemplate.jobs import export

    example = (torch.rand(8, 1, 8, 8),)
    seconds, runners = {}, {"eager PyTorch": model}
    started = time.perf_counter()
    runners["exported program (pt2)"] = export.export_pt2(model, example, folder / "m.pt2")
    seconds["pt2"] = time.perf_counter() - started
    started = time.perf_counter()
    export.export_onnx(model, example, folder / "m.onnx")
    seconds["onnx"] = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(folder / "m.onnx"), options, providers=["CPUExecutionProvider"]
    )
    runners["onnxruntime"] = lambda x: session.run(None, {"input_0": x.numpy()})[0]
    return seconds, runners


def throughput(runners: dict[str, Callable], batch: int, seconds: float) -> dict[str, float]:
    """Samples per second of each runtime on the same batch, each run for about `seconds`."""
    import torch

    x = torch.rand(batch, 1, 8, 8)
    rates = {}
    with torch.no_grad():
        for name, run in runners.items():
            run(x)  # warm
            count, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                run(x)
                count += 1
            rates[name] = count * batch / elapsed
    return rates


def measure(opts: Any) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    raw: dict[str, Any] = {}
    for label, config in CONFIGS.items():
        model = built_model(config)
        times: dict[str, list[float]] = {"pt2": [], "onnx": []}
        rates: dict[str, dict[str, list[float]]] = {
            str(b): {r: [] for r in RUNTIMES} for b in opts.batch_sizes
        }
        for rep in range(opts.reps):
            with tempfile.TemporaryDirectory() as folder:
                seconds, runners = exports(model, Path(folder))
                for fmt_name, s in seconds.items():
                    times[fmt_name].append(s)
                if rep % 2:
                    runners = dict(reversed(runners.items()))
                for batch in opts.batch_sizes:
                    for name, rate in throughput(runners, batch, opts.seconds).items():
                        rates[str(batch)][name].append(rate)
        raw[label] = {"export_seconds": times, "samples_per_second": rates}
    return raw


def ratio(values: dict[str, list[float]], name: str, to: str = "eager PyTorch") -> dict:
    return stats([a / b for a, b in zip(values[name], values[to], strict=True)])


def report(result: Result, raw: dict[str, Any], reps: int) -> None:
    result.table(
        f"Export time per format (the export job's functions, file written and reloaded); "
        f"median (min-max) over {reps} repetitions",
        ["model", "torch.export (pt2)", "ONNX (torch.onnx, dynamo)"],
        [
            [label, fmt(stats(r["export_seconds"]["pt2"])), fmt(stats(r["export_seconds"]["onnx"]))]
            for label, r in raw.items()
        ],
    )
    rows = []
    for label, r in raw.items():
        for batch, values in r["samples_per_second"].items():
            rows.append(
                [
                    label,
                    batch,
                    *(fmt(stats(values[name]), "/s") for name in RUNTIMES),
                    fmt(ratio(values, "exported program (pt2)"), "", 3),
                    fmt(ratio(values, "onnxruntime"), "", 3),
                ]
            )
    result.table(
        f"Inference on CPU, one thread, samples per second; median (min-max) over {reps} "
        "repetitions, ratios paired per repetition",
        [
            "model",
            "batch",
            *RUNTIMES,
            "pt2 over eager",
            "onnxruntime over eager",
        ],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0], reps=3)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--seconds", type=float, default=1.0, help="per runtime and batch size")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.reps, opts.seconds, opts.batch_sizes = 1, 0.05, [1, 64]
    result = Result(
        name="export_speed",
        title="Export: time per format and inference throughput",
        command=command_line("bench.export_speed", argv),
        packages=("torch", "onnx", "onnxscript", "onnxruntime"),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    raw = measure(opts)
    report(result, raw, opts.reps)
    options = {k: v for k, v in vars(opts).items() if k != "out"}
    result.raw = {"options": options, **raw}
    return result.write(opts.out)


if __name__ == "__main__":
    main()
