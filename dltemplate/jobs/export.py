"""The export job: a run's best checkpoint as a `torch.export` program and an ONNX model.

From the run's best checkpoint (or its `ckpt:`) and a batch of the data wrapper's predict split
(its test split when it has none), it writes into `export/`:

- `model.pt2`: `torch.export.export` of the task wrapper's forward, batch dimension dynamic;
- `model.onnx`: torch's ONNX exporter (the `export` extra: onnx, onnxscript, onnxruntime);
- `signature.json` and `README.md`: input and output names, shapes and dtypes, the task's kind,
  the preprocessing the data wrapper applies, the run's name, commit and test metrics.

Then it checks what it wrote: each exported model, reloaded from its file (the ONNX one run by
onnxruntime on CPU), gives the checkpoint model's outputs on a held-out batch and on batches of 1
and 64 samples to 1e-5 relative to the outputs' scale; `export.done` records the largest
difference. A model that cannot be exported, or whose export disagrees, fails with one line and
leaves no `export.done`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dltemplate.contracts import input_reader_of, split_batch_of
from dltemplate.errors import UserError
from dltemplate.jobs.checkpointing import check_checkpoint, safe_checkpoint_loading, weights_only
from dltemplate.jobs.common import build_for_job, checkpoint_hint, fitted_checkpoint
from dltemplate.jobs.task_kind import task_kind
from dltemplate.layout import EXPORT_FILES, RunLayout
from dltemplate.records import portable_path, read_json, write_json_atomic

TOLERANCE = 1e-5  # the largest difference allowed, relative to the outputs' largest magnitude
CHECK_BATCH_SIZES = (1, 64)  # the batch dimension is dynamic: check both ends
INPUT_NAMES = "input_{}"
OUTPUT_NAME = "output"


class ExportError(UserError):
    """The model cannot be exported, or its export does not give the checkpoint's outputs."""


class Forward(nn.Module):
    """The task wrapper's forward (model and output squeezing), without Lightning's state."""

    def __init__(self, task_wrapper: nn.Module) -> None:
        super().__init__()
        self.task_wrapper = task_wrapper

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.task_wrapper(*inputs)


def loaded_model(task_wrapper: nn.Module, checkpoint: str | Path) -> Forward:
    """The task wrapper with the checkpoint's weights, in eval mode, wrapped for export."""
    with safe_checkpoint_loading():
        state = torch.load(checkpoint, map_location="cpu", weights_only=weights_only())
    task_wrapper.load_state_dict(state["state_dict"])
    return Forward(task_wrapper).eval()


def model_inputs(task_wrapper: Any, batch: Any) -> tuple[torch.Tensor, ...]:
    """The positional tensors the task wrapper's forward takes for `batch` (its split_batch)."""
    inputs = split_batch_of(task_wrapper)(batch)[0]
    if isinstance(inputs, Mapping):
        raise ExportError(
            f"The model takes named inputs ({', '.join(inputs)}); the export job exports models "
            "called with positional tensors: have split_batch return a tuple"
        )
    inputs = tuple(inputs)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise ExportError("The model's inputs are not tensors; the export job exports tensors in")
    return inputs


def sample_batches(built: Any) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """An example batch to trace and a held-out one to check (the next batch, when there is
    one), from the predict split (the test split when the data wrapper has no predict one)."""
    data = built.data_wrapper
    data.setup("predict")
    try:
        loader = data.predict_dataloader()
    except Exception:
        data.setup("test")
        loader = data.test_dataloader()
    batches = iter(loader)
    first = model_inputs(built.task_wrapper, next(batches))
    try:
        second = model_inputs(built.task_wrapper, next(batches))
    except StopIteration:
        second = first
    return first, second


def resized(inputs: Sequence[torch.Tensor], n: int) -> tuple[torch.Tensor, ...]:
    """`inputs` with `n` samples: the first ones, repeated when there are fewer."""
    repeat = -(-n // len(inputs[0]))
    return tuple(x.repeat(repeat, *([1] * (x.dim() - 1)))[:n] for x in inputs)


def relative_difference(got: Any, expected: torch.Tensor) -> float:
    got = torch.as_tensor(got, dtype=expected.dtype)
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


def _dynamic_batch(inputs: Sequence[torch.Tensor]) -> tuple[tuple[dict[int, Any], ...]]:
    """Dimension 0 of every input is the batch (Forward takes the inputs as `*inputs`)."""
    batch = torch.export.Dim("batch")
    return (tuple({0: batch} for _ in inputs),)


def _first_line(exc: BaseException) -> str:
    """The construct torch names: its message's first line and the user's code line."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = lines[0] if lines else type(exc).__name__
    code = next((line for line in lines if line.startswith('File "')), "")
    after = lines[lines.index(code) + 1] if code and lines.index(code) + 1 < len(lines) else ""
    where = f" ({code}: {after})" if code else ""
    return f"{type(exc).__name__}: {head}{where}"


def export_pt2(model: Forward, example: tuple[torch.Tensor, ...], path: Path) -> Any:
    """Write the exported program; return it reloaded from the file, as a callable module."""
    try:
        program = torch.export.export(model, example, dynamic_shapes=_dynamic_batch(example))
    except Exception as exc:
        raise ExportError(f"torch.export cannot export the model: {_first_line(exc)}") from None
    torch.export.save(program, str(path))
    return torch.export.load(str(path)).module()


def export_onnx(model: Forward, example: tuple[torch.Tensor, ...], path: Path) -> Any:
    """Write the ONNX model; return an onnxruntime session of the file (CPU)."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(
            "The ONNX export needs the export extra: .venv/bin/pip install -e '.[export]' "
            "(or leave onnx out of the run's export: formats)"
        ) from None
    names = [INPUT_NAMES.format(i) for i in range(len(example))]
    onnx_log = logging.getLogger("torch.onnx")  # notes on torchvision ops this model lacks
    level = onnx_log.level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_log.setLevel(logging.ERROR)
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_shapes=_dynamic_batch(example),
                dynamo=True,
                external_data=False,  # one file (the format allows up to 2 GB)
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx cannot export the model: {_first_line(exc)}") from None
    finally:
        onnx_log.setLevel(level)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
        return torch.as_tensor(session.run(None, feed)[0])

    return run


EXPORTERS = {"pt2": export_pt2, "onnx": export_onnx}


def check_parity(
    name: str, exported: Any, model: Forward, batches: Sequence[tuple[torch.Tensor, ...]]
) -> float:
    """The largest relative difference between `exported` and the model on `batches`."""
    worst = 0.0
    with torch.no_grad():
        for inputs in batches:
            expected = model(*inputs)
            got = exported(*inputs)
            if tuple(got.shape) != tuple(expected.shape):
                raise ExportError(
                    f"The {name} export gives outputs of shape {tuple(got.shape)} for a batch of "
                    f"{len(inputs[0])}, the checkpoint model {tuple(expected.shape)}"
                )
            worst = max(worst, relative_difference(got, expected))
    if worst > TOLERANCE:
        raise ExportError(
            f"The {name} export differs from the checkpoint model by {worst:.3g} (relative), more "
            f"than {TOLERANCE:g}; the model may hold an operation that exports differently"
        )
    return worst


def tensor_spec(name: str, x: torch.Tensor) -> dict[str, Any]:
    return {"name": name, "shape": ["batch", *x.shape[1:]], "dtype": str(x.dtype).split(".")[-1]}


def preprocessing_note(data_wrapper: Any) -> str:
    """What the data wrapper does to raw inputs, from its `input_reader`'s docstring."""
    reader = input_reader_of(data_wrapper)
    if isinstance(reader, partial):  # the function's docstring, not partial's
        reader = reader.func
    doc = ((reader.__doc__ if reader is not None else None) or "").strip()
    if doc:
        return " ".join(doc.split())
    return (
        "The inputs are what the data wrapper's dataset yields (after its transforms); "
        "applying the same preprocessing to new inputs is the user's"
    )


def _commit(run_dir: Path) -> str | None:
    record = RunLayout.at(run_dir).record("fit")
    if Path(record).is_file():
        return read_json(record).get("commit")
    return None


def signature(
    *,
    run_dir: Path,
    inputs: tuple[torch.Tensor, ...],
    output: torch.Tensor,
    kind: str | None,
    built: Any,
    checkpoint: Path,
    formats: Sequence[str],
) -> dict[str, Any]:
    layout = RunLayout.at(run_dir)
    test_done = Path(layout.done("test"))
    proj, exp, name = layout.names
    return {
        "run": f"{proj}/{exp}/{name}",
        "commit": _commit(run_dir),
        "checkpoint": portable_path(checkpoint),
        "formats": {f: EXPORT_FILES[f] for f in formats},
        "inputs": [tensor_spec(INPUT_NAMES.format(i), x) for i, x in enumerate(inputs)],
        "outputs": [tensor_spec(OUTPUT_NAME, output)],
        "task_kind": kind,
        "preprocessing": preprocessing_note(built.data_wrapper),
        "test_metrics": read_json(test_done).get("metrics") if test_done.is_file() else None,
    }


README = """\
# {run}: the exported model

Exported from `{checkpoint}` by the template's export job ({formats}).

- Inputs: {inputs}
- Output: {outputs}{kind}
- Preprocessing: {preprocessing}
- Test metrics of the run: {metrics}

Every format gives the checkpoint model's outputs to {tolerance:g} (relative; see export.done).

```python
import torch
program = torch.export.load("model.pt2").module()
outputs = program(torch.zeros({example_shape}))
```

```python
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
outputs = session.run(None, {{"input_0": np.zeros({example_shape}, dtype=np.{dtype})}})[0]
```
"""


def _describe(specs: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(
        f"`{s['name']}` {s['dtype']} [{', '.join(map(str, s['shape']))}]" for s in specs
    )


def readme(sig: Mapping[str, Any]) -> str:
    first = sig["inputs"][0]
    shape = tuple([2, *first["shape"][1:]])
    metrics = sig["test_metrics"]
    return README.format(
        run=sig["run"],
        checkpoint=sig["checkpoint"],
        formats=", ".join(sig["formats"].values()),
        inputs=_describe(sig["inputs"]),
        outputs=_describe(sig["outputs"]),
        kind=f" ({sig['task_kind']})" if sig["task_kind"] else "",
        preprocessing=sig["preprocessing"],
        metrics=", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) if metrics else "not tested",
        tolerance=TOLERANCE,
        example_shape=shape,
        dtype=first["dtype"],
    )


def export_run(
    *,
    run_dir: str | Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    fit_done: str | Path,
    out_dir: str | Path,
    done_file: str | Path,
    formats: Sequence[str] = tuple(EXPORT_FILES),
    source: str = "the registry",
    about: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the run's best checkpoint into `out_dir` in `formats`, check each export against
    the checkpoint model, then write `done_file` (JSON, led by `about`) as the last act."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    checkpoint = fitted_checkpoint(fit_done)
    built = build_for_job("export", config_file, overrides, seed, threads, source)
    check_checkpoint(checkpoint, built.task_wrapper, checkpoint_hint(fit_done, source))
    model = loaded_model(built.task_wrapper, checkpoint)
    example, held_out = sample_batches(built)
    checks = [held_out, *(resized(held_out, n) for n in CHECK_BATCH_SIZES)]
    # A fresh folder beside the target, moved into place when every format checks out.
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        results = {}
        for name in formats:
            started = time.perf_counter()
            exported = EXPORTERS[name](model, example, staging / EXPORT_FILES[name])
            seconds = time.perf_counter() - started
            results[name] = {
                "file": portable_path(out_dir / EXPORT_FILES[name]),
                "seconds": round(seconds, 3),
                "max_relative_difference": check_parity(name, exported, model, checks),
            }
        with torch.no_grad():
            output = model(*example)
        kind = task_kind(built.task_wrapper, output, None)
        sig = signature(
            run_dir=run_dir,
            inputs=example,
            output=output,
            kind=kind,
            built=built,
            checkpoint=checkpoint,
            formats=formats,
        )
        (staging / "signature.json").write_text(json.dumps(sig, indent=2) + "\n")
        (staging / "README.md").write_text(readme(sig))
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    record = {
        **(about or {}),
        "checkpoint": portable_path(checkpoint),
        "checkpoint_bytes": checkpoint.stat().st_size,
        "checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns,
        "formats": results,
        "checked_batch_sizes": [len(held_out[0]), *CHECK_BATCH_SIZES],
        "tolerance": TOLERANCE,
    }
    write_json_atomic(done_file, record)
    return record


def export_best(
    *,
    summary_csv: str | Path,
    metric: str | None,
    mode: str | None,
    specs: Mapping[str, Mapping[str, Any]],
    fit_dones: Mapping[str, str],
    threads: int,
    out_dir: str | Path,
    done_file: str | Path,
) -> dict[str, Any]:
    """Export the experiment's best run by `metric` (its summary's default when None)."""
    import csv

    from dltemplate.results.metric_policy import default_metric
    from dltemplate.results.plots import best_runs
    from dltemplate.workflow.job_spec import JobSpec

    with open(summary_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("run") in specs]
    columns = list(rows[0]) if rows else []
    metric = metric or default_metric(columns)
    best = best_runs(rows, metric, mode) if metric else []
    if not best:
        raise ExportError(
            f"{summary_csv}: no tested run has {metric or 'a test metric'}, so there is no best "
            "run to export; give the runs a test job (jobs: [fit, test])"
        )
    spec = JobSpec.from_params(specs[best[0]])
    return export_run(
        run_dir=spec.run_dir,
        config_file=spec.config,
        overrides=spec.overrides,
        seed=spec.seed,
        threads=threads,
        fit_done=fit_dones[best[0]],
        out_dir=out_dir,
        done_file=done_file,
        source=spec.source,
        about={"run": best[0], "metric": metric, "mode": mode},
    )
