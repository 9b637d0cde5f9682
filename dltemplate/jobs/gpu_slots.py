"""Give each GPU job of a machine its own devices, since Snakemake counts GPUs but names none.

`snakemake --resources gpu=2` lets jobs that ask for 2 GPUs in total run at once, but every
one of them would see (and Lightning would pick) device 0. So each job script calls
`claim_gpus` before torch loads: it locks one file per device it takes
(`<slots dir>/gpu-<id>.lock`, POSIX record locks that the kernel drops when the process ends,
even on SIGKILL) and sets CUDA_VISIBLE_DEVICES to those devices. A job that asks for no GPU
gets none (CUDA_VISIBLE_DEVICES=""), so it cannot take a device that another job holds.

Under SLURM (or any launcher) that already hands the job exactly the devices it asked for,
CUDA_VISIBLE_DEVICES stays as it is. The devices to share are CUDA_VISIBLE_DEVICES when set,
else those that `nvidia-smi` lists. Torch-free: it must run before torch starts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

from dltemplate.errors import UserError
from dltemplate.results.environment import nvidia_smi

SLOTS_DIR_ENV = "DLT_GPU_SLOTS_DIR"  # where the lock files live (default: per user, in /tmp)
WAIT_NOTICE_SECONDS = 60  # how often a job waiting for a device says so

_held: dict[str, int] = {}  # device id -> fd of its lock, open until the process ends


def visible_devices(environ: MutableMapping[str, str]) -> list[str] | None:
    """The device ids this process may use: CUDA_VISIBLE_DEVICES's when it is set, else the
    indices that nvidia-smi lists; None when neither tells (no NVIDIA driver found)."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        return [d.strip() for d in value.split(",") if d.strip()]
    rows = nvidia_smi("index")
    return None if rows is None else [index for (index,) in rows if index]


def slots_dir(environ: MutableMapping[str, str]) -> Path:
    """One folder of lock files per machine and user (per SLURM job inside an allocation,
    whose device ids are its own)."""
    base = environ.get(SLOTS_DIR_ENV) or os.path.join(
        tempfile.gettempdir(), f"dltemplate-gpu-slots-{os.getuid()}"
    )
    job = environ.get("SLURM_JOB_ID")
    return Path(base) / (f"slurm-{job}" if job else "local")


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    return fd


def acquire(
    count: int,
    devices: list[str],
    folder: Path,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Lock `count` of `devices` (all or none) and return their ids, waiting while fewer are
    free; the locks stay held until `release` or the end of the process. Raises TimeoutError
    after `timeout` seconds (None: wait as long as it takes)."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    noticed = started
    while True:
        taken: dict[str, int] = {}
        for device in devices:
            if device in _held:
                continue
            fd = _try_lock(folder / f"gpu-{device}.lock")
            if fd is not None:
                taken[device] = fd
                if len(taken) == count:
                    _held.update(taken)
                    return list(taken)
        for fd in taken.values():
            os.close(fd)  # not enough free: give back, so that two jobs never deadlock
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            raise TimeoutError(f"{count} of GPUs {devices} not free after {timeout} s")
        if now - noticed >= WAIT_NOTICE_SECONDS:
            say(f"GPU slots: waiting for {count} free of {','.join(devices)} (locks in {folder})")
            noticed = now
        time.sleep(poll)


def release(devices: list[str] | None = None) -> None:
    """Give back the devices this process holds (all of them by default)."""
    for device in list(_held) if devices is None else devices:
        fd = _held.pop(device, None)
        if fd is not None:
            os.close(fd)


def claim_gpus(
    gpus: int | None,
    environ: MutableMapping[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> list[str] | None:
    """Set CUDA_VISIBLE_DEVICES for a job that asks for `gpus` devices (its Snakemake `gpu`
    resource; None: it did not say, and nothing changes). Returns the devices it got.

    Call it before torch is imported: CUDA reads the variable once, when it starts.
    """
    environ = os.environ if environ is None else environ
    job = f" (SLURM job {environ['SLURM_JOB_ID']})" if environ.get("SLURM_JOB_ID") else ""
    if gpus is None:
        say(f"GPU slots{job}: no gpu resource; CUDA_VISIBLE_DEVICES left as it is")
        return None
    gpus = int(gpus)
    if gpus <= 0:
        environ["CUDA_VISIBLE_DEVICES"] = ""
        say(f"GPU slots{job}: the job asks for no GPU: CUDA_VISIBLE_DEVICES=''")
        return []
    devices = visible_devices(environ)
    if devices is None:
        say(
            f"GPU slots{job}: the job asks for {gpus} GPU(s) but no NVIDIA GPU was found (no "
            "CUDA_VISIBLE_DEVICES, no nvidia-smi); CUDA_VISIBLE_DEVICES left unset"
        )
        return None
    if len(devices) < gpus:
        raise UserError(
            f"The job asks for {gpus} GPU(s) but only {len(devices)} are visible{job} "
            f"(CUDA_VISIBLE_DEVICES={','.join(devices)!r}); lower `gpus` in the registry's "
            "resources, or run it where more GPUs are"
        )
    if len(devices) == gpus:
        taken = devices  # the launcher (SLURM, or the user) gave exactly these
        how = "as given"
    else:
        folder = slots_dir(environ)
        taken = acquire(gpus, devices, folder, say=say)
        how = f"locked in {folder}"
    environ["CUDA_VISIBLE_DEVICES"] = ",".join(taken)
    say(f"GPU slots{job}: CUDA_VISIBLE_DEVICES={','.join(taken)} ({how}) at {time.time():.3f}")
    return taken
