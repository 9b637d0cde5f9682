"""Archive the config a run ran with, so the run folder alone can reproduce it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dltemplate.config.loader import package_root


def local_config_files(config_file: str | Path) -> list[Path]:
    """The config file and every module of its package that loading it imported."""
    path = Path(config_file).resolve()
    import_root, module_name = package_root(path)
    top = module_name.split(".")[0]
    files = {path}
    for name, module in list(sys.modules.items()):
        if name == top or name.startswith(top + "."):
            file = getattr(module, "__file__", None)
            if file and Path(file).resolve().is_relative_to(import_root):
                files.add(Path(file).resolve())
    return sorted(files)


def archive_config_folder(config_file: str | Path, dest: str | Path) -> Path:
    """Copy the config's local files into `dest`, keeping their layout under the import root."""
    path = Path(config_file).resolve()
    import_root, _ = package_root(path)
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for file in local_config_files(path):
        target = tmp / file.relative_to(import_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
