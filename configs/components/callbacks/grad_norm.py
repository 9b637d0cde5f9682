"""Getter for gradient-norm logging (`train/grad_norm` before each optimizer step)."""

from wrappers import GradNormLogger


def get_grad_norm(*, norm_type: float | None = None) -> GradNormLogger | None:
    """`norm_type`: 2.0 for the L2 norm of all gradients together; None: not logged."""
    if norm_type is None:
        return None
    return GradNormLogger(norm_type=norm_type)
