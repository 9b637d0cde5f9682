"""Errors that users cause and can fix: shown as one line, without a traceback."""


class UserError(Exception):
    """A problem with the user's input (config, registry, name, data, checkpoint).

    The message names the file, key, run or path and says what to do. The command line and
    the job scripts print it as one line and exit non-zero; `--debug` shows the traceback.
    """


class ConfigError(UserError):
    """A config file or one of its getters cannot be loaded or called as written."""


class ContractError(ConfigError):
    """A task or data wrapper without a member its job runs, or with one of the wrong kind
    (dltemplate.contracts)."""


class OverrideError(UserError):
    """An override names an unknown path or carries a value of the wrong type."""


class ShapeError(UserError):
    """The model's outputs, the targets, the loss or a metric do not fit each other."""


class MissingDataError(UserError):
    """The files a dataset reads are not there yet (link them into data/); a project's config
    test skips such a config rather than failing."""


class RegistryError(UserError):
    """The run registry (configs/projects/*.yaml) does not parse or does not fit the schema."""


def one_line(exc: BaseException) -> str:
    """`Type: first line of its message`: how a failed job names its error."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
