"""The DDP strategies of a job: ranks it forks itself, or ranks that `srun` started
(dltemplate.jobs.distributed says when).

- Forked ranks: the job's own process learns the ranks' progress. With a fork launch it only
  waits for the ranks; Lightning sends back the weights, best checkpoint and metrics but not
  the loops' progress, so `current_epoch` and `global_step` would read 0 there. Rank 0 sends
  the fit loop's state too.
- A fit's validation counts each sample once, as a test job does: the data wrapper hands each
  rank an unpadded share (dltemplate.wrappers.data_wrappers), and the ranks may then run
  different numbers of batches, since DDP's forward syncs nothing without gradients. Each
  rank's buffers (BatchNorm's running statistics) moved with its own last training batches,
  so rank 0's, which its checkpoint holds, go to every rank when validation starts.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.trainer.states import TrainerFn


class _Launcher(_MultiProcessingLauncher):
    def get_extra_results(self, trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        extra["fit_loop"] = trainer.fit_loop.state_dict()
        return extra

    def update_main_process_results(self, trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        if "fit_loop" in extra:
            trainer.fit_loop.load_state_dict(extra["fit_loop"])


class JobDDPStrategy(DDPStrategy):
    """DDP whose fit validates each sample once, with rank 0's buffers (the module doc); the
    data wrapper gives it the unpadded evaluation sampler. As is, for ranks that srun started."""

    def _fitting(self) -> bool:
        return self.lightning_module.trainer.state.fn == TrainerFn.FITTING

    def on_validation_start(self) -> None:
        super().on_validation_start()
        if self._fitting():
            with torch.no_grad():
                for buffer in self.lightning_module.buffers():
                    torch.distributed.broadcast(buffer, src=0)


class ForkDDPStrategy(JobDDPStrategy):
    """`JobDDPStrategy(start_method="fork")` whose job process learns the ranks' progress."""

    def __init__(self, **options: Any) -> None:
        super().__init__(start_method="fork", **options)

    def _configure_launcher(self) -> None:
        self._launcher = _Launcher(self, start_method="fork")
