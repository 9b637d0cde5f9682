"""`main.py predict --input`: a trained run's model on a file of new inputs, outside the registry.

The inputs come from the data wrapper's `predict_from(path)` (its `input_reader`, which
preprocesses raw samples as the dataset does) or, without one, from the array in the file as it
is. They are checked against the model's signature (the export's `signature.json`, else the
predict split's first batch); the exported program runs them when the run's export is current
(made from the checkpoint that is there now), else the checkpoint model. The CSV has the predict
job's columns (dltemplate.jobs.predict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dltemplate.contracts import predict_from_of
from dltemplate.errors import UserError
from dltemplate.jobs.checkpointing import check_checkpoint
from dltemplate.jobs.common import build_for_job, checkpoint_hint, fitted_checkpoint
from dltemplate.jobs.export import (
    INPUT_NAMES,
    OUTPUT_NAME,
    loaded_model,
    sample_batches,
    tensor_spec,
)
from dltemplate.jobs.inputs import check_finite, check_inputs, load_array
from dltemplate.jobs.predict import PredictionCsvWriter
from dltemplate.jobs.predict_paths import check_input_path, check_output_path
from dltemplate.jobs.task_kind import task_kind
from dltemplate.layout import RunLayout
from dltemplate.records import read_json
from dltemplate.workflow.job_spec import JobSpec
from dltemplate.workflow.targets import rerun_command

CHUNK = 4096  # samples per forward pass, so that a large file does not need all memory at once


def current_export(layout: RunLayout, checkpoint: Path) -> dict[str, Any] | None:
    """The export record when the run's exported program was made from `checkpoint` as it is
    now (same file, size and modification time), else None."""
    done = Path(layout.done("export"))
    program = Path(layout.exported("pt2"))
    if not done.is_file() or not program.is_file():
        return None
    record = read_json(done)
    stat = checkpoint.stat()
    same = (
        Path(record.get("checkpoint", "")) == checkpoint
        and record.get("checkpoint_bytes") == stat.st_size
        and record.get("checkpoint_mtime_ns") == stat.st_mtime_ns
    )
    return record if same else None


def new_inputs(built: Any, path: Path) -> tuple[torch.Tensor, ...]:
    inputs = predict_from_of(built.data_wrapper)(path)
    if inputs is None:
        inputs = (torch.as_tensor(load_array(path)),)
    return tuple(inputs)


def predict_file(
    spec: JobSpec, fit_done: str, threads: int, input_path: str | Path, output_path: str | Path
) -> dict[str, Any]:
    """Write the model's predictions for the samples in `input_path` to `output_path`."""
    input_path, output_path = Path(input_path), Path(output_path)
    check_input_path(input_path)
    check_output_path(output_path, input_path)
    if Path(fit_done).suffix == ".done" and not Path(fit_done).is_file():
        raise UserError(
            f"The run {spec.run_dir} has no finished fit ({fit_done} is missing); fit it first: "
            f"{rerun_command(fit_done, 'fit').split(' --forcerun')[0]}"
        )
    checkpoint = fitted_checkpoint(fit_done)
    built = build_for_job("predict", spec.config, spec.overrides, spec.seed, threads, spec.source)
    check_checkpoint(checkpoint, built.task_wrapper, checkpoint_hint(fit_done, spec.source))
    layout = RunLayout.at(spec.run_dir)
    export = current_export(layout, checkpoint)
    if export is not None:
        signature = read_json(layout.export_signature)
        model = torch.export.load(layout.exported("pt2")).module()
        used = f"the exported program {layout.exported('pt2')}"
    else:
        example, _ = sample_batches(built)
        with torch.no_grad():
            output = built.task_wrapper(*example)
        signature = {
            "inputs": [tensor_spec(INPUT_NAMES.format(i), x) for i, x in enumerate(example)],
            "outputs": [tensor_spec(OUTPUT_NAME, output)],
            "task_kind": None,
        }
        model = loaded_model(built.task_wrapper, checkpoint)
        used = f"the checkpoint {checkpoint}"
    inputs = check_inputs(new_inputs(built, input_path), signature["inputs"], f"Input {input_path}")
    check_finite(inputs, f"Input {input_path}")  # after the shapes: one row is one sample
    output_path.parent.mkdir(parents=True, exist_ok=True)
    writer = PredictionCsvWriter(output_path)
    try:
        kind = signature.get("task_kind")
        with torch.no_grad():
            for start in range(0, len(inputs[0]), CHUNK):
                outputs = model(*(x[start : start + CHUNK] for x in inputs)).float()
                if writer.rows == 0 and kind is None:
                    kind = task_kind(built.task_wrapper, outputs, None)
                writer.write(outputs, None, kind)
        writer.finish()
    except BaseException:
        writer.tmp.unlink(missing_ok=True)
        raise
    return {"rows": writer.rows, "used": used, "output": str(output_path)}
