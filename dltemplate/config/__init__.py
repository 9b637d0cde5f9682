"""The Python config system: loading config modules, resolving overrides, recording hparams."""
