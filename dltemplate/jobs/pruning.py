"""A search trial's fit reports its intermediate metric to the study, and stops when pruned.

The fit of a search trial (a run with `pruning` in its job spec, dltemplate.registry.search)
gets this callback: after each epoch's validation it reports the metric to its Optuna trial and
asks the study's pruner; a pruned trial stops like an early stop (its checkpoints and records
stay), and its fit.done says `pruned`, which the tell job passes on to the study.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L

from dltemplate.errors import UserError


class ReportToStudy(L.Callback):
    """Report `pruning["intermediate"]` each epoch to trial `pruning["trial"]`; prune on its
    study's say. `pruned_epoch` is the epoch (from 1) after which the fit was pruned."""

    def __init__(self, pruning: Mapping[str, Any]) -> None:
        self.pruning = dict(pruning)
        self.pruned_epoch: int | None = None
        self._trial = None

    def _optuna_trial(self):
        if self._trial is None:
            import optuna

            from dltemplate.jobs.search import STUDY, pruner_of, storage

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(
                study_name=STUDY,
                storage=storage(self.pruning["journal"]),
                pruner=pruner_of(self.pruning["pruner"]),
            )
            number = self.pruning["trial"]
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, number
            )
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_epoch is not None:
            return
        name = self.pruning["intermediate"]
        value = trainer.callback_metrics.get(name)
        if value is None:
            known = ", ".join(sorted(m for m in trainer.callback_metrics if m.startswith("val/")))
            raise UserError(
                f"The search's pruner reads {name}, which this fit does not log (its val/ "
                f"metrics: {known or 'none'}); set the search's `intermediate:` to one of them"
            )
        from optuna.trial import TrialState

        trial = self._optuna_trial()
        if trial.study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
            return  # told already (a forced rerun of a finished trial): nothing to report to
        epoch = trainer.current_epoch
        trial.report(self.pruning["sign"] * float(value), step=epoch)
        if trial.should_prune():
            self.pruned_epoch = epoch + 1
            trainer.should_stop = True
            print(f"Pruned by the search after epoch {epoch + 1} ({name} {float(value):.4g})")
