# Registry loading, wildcard constraints and input functions. The logic lives in the
# dltemplate package (dltemplate.targets), where pytest reaches it; nothing here imports torch.
import sys

from dltemplate import targets
from dltemplate.errors import UserError
from dltemplate.registry import load_registry

try:
    REGISTRY = load_registry(config["registry"])
except UserError as error:
    sys.exit(f"Error: {error}")


wildcard_constraints:
    **targets.WILDCARD_CONSTRAINTS,


def get_run(wildcards):
    try:
        return REGISTRY.run(wildcards.proj, wildcards.exp, wildcards.run)
    except UserError as error:
        sys.exit(f"Error: {error}")


def get_all_targets():
    return targets.all_targets(REGISTRY)


def get_job_params(wildcards):
    return targets.job_params(get_run(wildcards), config["seed"])


def get_fit_done(wildcards):
    return targets.job_done(get_run(wildcards), "fit")


def get_experiment_targets(wildcards):
    return targets.experiment_targets(REGISTRY, wildcards.proj, wildcards.exp)


def get_threads(job):
    return config["threads"][job]
