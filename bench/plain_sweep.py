"""The digits `lr_sweep` (12 runs: 3 learning rates x 2 batch sizes x 2 seeds, fit 5 epochs,
then test) as one plain Python process would run it, imports paid once, as Hydra's basic
launcher does: a plain LightningModule (AdamW, plateau schedule, cross-entropy, accuracy and F1),
a plain LightningDataModule, Lightning's own checkpointing and CSV logger. The model is the
example's MLP class. Prints one JSON line: the seconds spent importing and in all 12 runs.

    python -m bench.plain_sweep OUT_FOLDER [EPOCHS [RUNS]]

`bench.warm_jobs --quick`, which checks the code, not the figures, asks for 1 epoch and the
first 2 runs (RUNS, default all 12).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, random_split  # noqa: E402
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score  # noqa: E402

from dataset_classes.digits import DigitsDataset  # noqa: E402
from models.mlp import MLP  # noqa: E402

IMPORTED = time.perf_counter()
GRID = [(lr, bs, seed) for lr in (3e-4, 1e-3, 3e-3) for bs in (32, 128) for seed in (0, 1)]


class Classifier(L.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = MLP(in_features=64, num_classes=10, hidden_dim=128, num_layers=2, dropout=0.1)
        self.loss = nn.CrossEntropyLoss()
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes=10, average="macro")
        self.test_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes=10, average="macro")

    def training_step(self, batch, _):
        x, y = batch
        loss = self.loss(self.model(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self.model(x)
        self.log("val/loss", self.loss(logits, y))
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        self.log_dict({"val/acc": self.val_acc, "val/f1": self.val_f1})

    def test_step(self, batch, _):
        x, y = batch
        logits = self.model(x)
        self.log("test/loss", self.loss(logits, y))
        self.test_acc(logits, y)
        self.test_f1(logits, y)
        self.log_dict({"test/acc": self.test_acc, "test/f1": self.test_f1})

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": "val/loss"},
        }


class Digits(L.LightningDataModule):
    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        parts = random_split(DigitsDataset(), (0.7, 0.15, 0.15), torch.Generator().manual_seed(0))
        self.train, self.val, self.test = parts

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)


def main(out: str, epochs: int = 5, runs: int = len(GRID)) -> None:
    torch.set_num_threads(1)
    for lr, batch_size, seed in GRID[:runs]:
        L.seed_everything(seed, verbose=False)
        trainer = L.Trainer(
            max_epochs=epochs,
            default_root_dir=f"{out}/lr{lr}-bs{batch_size}-s{seed}",
            logger=L.pytorch.loggers.CSVLogger(f"{out}/lr{lr}-bs{batch_size}-s{seed}"),
            callbacks=[L.pytorch.callbacks.ModelCheckpoint(monitor="val/loss", save_last=True)],
            deterministic=True,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        data = Digits(batch_size)
        trainer.fit(Classifier(lr), datamodule=data)
        trainer.test(datamodule=data, ckpt_path="best", verbose=False)
    done = time.perf_counter()
    print(json.dumps({"imports": IMPORTED - STARTED, "runs": done - IMPORTED}))


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:4]))
