"""The task's kind picks predictions.csv's columns and the test's plot data."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dltemplate.errors import ContractError
from dltemplate.jobs.predict import PredictionCsvWriter
from dltemplate.jobs.task_kind import CLASSIFICATION, MULTILABEL, REGRESSION, task_kind
from dltemplate.jobs.test_outputs import TestOutputs
from wrappers import BasicTaskWrapper


class Module(nn.Module):
    def __init__(self, loss: nn.Module | None = None) -> None:
        super().__init__()
        if loss is not None:
            self.loss_function = loss


SCORES = torch.randn(4, 3)


@pytest.mark.parametrize(
    ("loss", "output", "target", "kind"),
    [
        (None, SCORES, torch.tensor([0, 2, 1, 1]), CLASSIFICATION),
        (None, SCORES, None, CLASSIFICATION),
        (None, SCORES, torch.randint(0, 2, (4, 3)), MULTILABEL),
        (nn.BCEWithLogitsLoss(), SCORES, torch.randint(0, 2, (4, 3)).float(), MULTILABEL),
        (None, SCORES, torch.randn(4, 3), REGRESSION),
        (None, torch.randn(4, 1), torch.randn(4, 1), REGRESSION),
        (nn.MSELoss(), SCORES, None, REGRESSION),
        (nn.MSELoss(), torch.randn(4, 1), torch.randn(4), None),  # would broadcast: no kind
        (None, torch.randn(4, 1), torch.randn(4), None),
        (nn.CrossEntropyLoss(), SCORES, torch.randn(4, 3), None),  # probability targets
    ],
)
def test_task_kind(loss, output, target, kind) -> None:
    assert task_kind(Module(loss), output, target) == kind


def test_a_declared_kind_wins() -> None:
    module = Module(nn.MSELoss())
    module.task_kind = MULTILABEL
    assert task_kind(module, SCORES, torch.randint(0, 2, (4, 3)).float()) == MULTILABEL
    module.task_kind = "ranking"
    with pytest.raises(ContractError, match="task_kind is str 'ranking', not one of"):
        task_kind(module, SCORES, None)


def write_predictions(tmp_path: Path, module, batches) -> list[dict[str, str]]:
    writer = PredictionCsvWriter(tmp_path / "predictions.csv")
    for i, (output, batch) in enumerate(batches):
        writer.write_on_batch_end(None, module, output, None, batch, i)
    writer.finish()
    with (tmp_path / "predictions.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_predictions_of_a_regression_carry_the_target(tmp_path: Path) -> None:
    x = torch.zeros(3, 10)
    rows = write_predictions(
        tmp_path,
        Module(nn.MSELoss()),
        [
            (torch.tensor([[0.5], [1.0]]), (x[:2], torch.tensor([[0.25], [2.0]]))),
            (torch.tensor([[-1.0]]), (x[2:], torch.tensor([[-3.0]]))),
        ],
    )
    assert list(rows[0]) == ["index", "prediction", "target"]
    assert [(r["index"], r["prediction"], r["target"]) for r in rows] == [
        ("0", "0.5", "0.25"),
        ("1", "1", "2"),
        ("2", "-1", "-3"),
    ]


def test_predictions_of_several_outputs_and_of_multilabel(tmp_path: Path) -> None:
    rows = write_predictions(
        tmp_path,
        Module(),
        [(torch.tensor([[1.0, 2.0]]), (torch.zeros(1, 3), torch.tensor([[0.5, 1.5]])))],
    )
    assert list(rows[0]) == ["index", "pred_0", "pred_1", "target_0", "target_1"]
    labels = torch.tensor([[1, 0, 1]])
    rows = write_predictions(
        tmp_path,
        Module(nn.BCEWithLogitsLoss()),
        [(torch.tensor([[3.0, -3.0, -1.0]]), (None, labels.float()))],
    )
    assert list(rows[0]) == [
        "index",
        "pred_0",
        "pred_1",
        "pred_2",
        "target_0",
        "target_1",
        "target_2",
        "prob_0",
        "prob_1",
        "prob_2",
    ]
    assert [rows[0][f"pred_{i}"] for i in range(3)] == ["1", "0", "0"]  # sigmoid >= 0.5
    assert [rows[0][f"target_{i}"] for i in range(3)] == ["1", "0", "1"]
    assert float(rows[0]["prob_0"]) == pytest.approx(
        torch.sigmoid(torch.tensor(3.0)).item(), abs=1e-5
    )


def test_predictions_without_targets(tmp_path: Path) -> None:
    rows = write_predictions(tmp_path, Module(), [(SCORES, torch.zeros(4, 2))])  # inputs alone
    assert list(rows[0]) == ["index", "predicted_class", "prob_0", "prob_1", "prob_2"]
    rows = write_predictions(
        tmp_path, Module(nn.MSELoss()), [(torch.ones(2, 1), (torch.zeros(2, 2),))]
    )
    assert list(rows[0]) == ["index", "prediction"]


def _tested(task: BasicTaskWrapper, x: torch.Tensor, y: torch.Tensor) -> TestOutputs:
    outputs = TestOutputs()
    trainer = L.Trainer(
        callbacks=[outputs], logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.test(task, DataLoader(TensorDataset(x, y), batch_size=4), verbose=False)
    return outputs


def test_a_regression_test_keeps_every_pair(tmp_path: Path) -> None:
    task = BasicTaskWrapper(
        model=nn.Linear(3, 2), loss_function=nn.MSELoss(), optimizer=torch.optim.SGD
    )
    x, y = torch.randn(10, 3), torch.randn(10, 2)
    outputs = _tested(task, x, y)
    assert outputs.kind == REGRESSION
    assert not outputs.write_confusion_csv(tmp_path / "c.csv")
    assert outputs.write_regression_csv(tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["pred_0", "pred_1", "target_0", "target_1"] and len(rows) == 10
    expected = task.model(x).detach()
    assert float(rows[9]["pred_1"]) == pytest.approx(float(expected[9, 1]), abs=1e-4)
    assert float(rows[9]["target_1"]) == pytest.approx(float(y[9, 1]), abs=1e-4)


def test_a_classifier_test_counts_its_confusion(tmp_path: Path) -> None:
    task = BasicTaskWrapper(
        model=nn.Linear(3, 4), loss_function=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD
    )
    (tmp_path / "r.csv").write_text("stale")
    outputs = _tested(task, torch.randn(10, 3), torch.randint(0, 4, (10,)))
    assert outputs.kind == CLASSIFICATION and int(outputs.counts.sum()) == 10
    assert not outputs.write_regression_csv(tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()  # an earlier test's data do not stay


def test_a_multilabel_test_counts_each_label(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    task = BasicTaskWrapper(
        model=model, loss_function=nn.BCEWithLogitsLoss(), optimizer=torch.optim.SGD
    )
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10, 2)).float()
    outputs = _tested(task, x, y)
    assert outputs.kind == MULTILABEL
    assert outputs.write_label_csv(tmp_path / "m.csv")
    with (tmp_path / "m.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    predicted = model(x).detach() >= 0  # sigmoid >= 0.5
    for label, row in enumerate(rows):
        p, t = predicted[:, label], y[:, label] == 1
        assert int(row["tp"]) == int((p & t).sum()) and int(row["fn"]) == int((~p & t).sum())
        assert sum(int(row[k]) for k in ("tp", "fp", "fn", "tn")) == 10
