"""Give each GPU job of a machine its own devices, since Snakemake counts GPUs but names none.

`snakemake --resources gpu=2` lets jobs that ask for 2 GPUs in total run at once, but every
one of them would see (and Lightning would pick) device 0. So each job script calls
`claim_gpus` before torch loads: it locks one file per device it takes
(`<slots dir>/gpu-<id>.lock`, POSIX record locks that the kernel drops when the process ends,
even on SIGKILL) and sets CUDA_VISIBLE_DEVICES to those devices. A job that asks for no GPU
gets none (CUDA_VISIBLE_DEVICES=""), so it cannot take a device that another job holds.

A job that asks for a share of one device (the `gpu_share` resource, in sixtieths of a GPU:
15 for `gpus: 0.25`; dltemplate.registry.gpu_shares) takes a shared (read) lock on that
device's file, so that whole-device jobs and share jobs exclude each other, plus as many of
the device's 60 unit files (`gpu-<id>.u<k>.lock`, exclusive) as it has units. It goes to the
device with the most free units (devices fill evenly; ties: the first listed), all or
nothing, and waits like a whole-device job while none has room.

Under SLURM (or any launcher) that already hands the job exactly the devices it asked for,
CUDA_VISIBLE_DEVICES stays as it is. The devices to share are CUDA_VISIBLE_DEVICES when set,
else those that `nvidia-smi` lists. Torch-free: it must run before torch starts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

from dltemplate.errors import UserError
from dltemplate.registry.gpu_shares import UNITS_PER_GPU
from dltemplate.results.environment import nvidia_smi

SLOTS_DIR_ENV = "DLT_GPU_SLOTS_DIR"  # where the lock files live (default: per user, in /tmp)
WAIT_NOTICE_SECONDS = 60  # how often a job waiting for a device says so

# device id -> the fds of its locks (a share's: the device's, then its units), open until the
# process ends. POSIX locks belong to the process: closing any fd of a file drops them, so a
# file that this process holds is never opened again (held devices are skipped).
_held: dict[str, list[int]] = {}


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


def _try_lock(path: Path, shared: bool = False, mark: bool = True) -> int | None:
    """An fd holding `path`'s lock (exclusive, or `shared`: a read lock, which other read locks
    share), or None when another process holds a conflicting one. `mark`: write our pid in it."""
    fd = os.open(path, (os.O_RDONLY if shared else os.O_RDWR) | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    if mark and not shared:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
    return fd


def _device_file(folder: Path, device: str) -> Path:
    return folder / f"gpu-{device}.lock"


def _unit_file(folder: Path, device: str, unit: int) -> Path:
    return folder / f"gpu-{device}.u{unit}.lock"


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
            fd = _try_lock(_device_file(folder, device))
            if fd is not None:
                taken[device] = fd
                if len(taken) == count:
                    _held.update({device: [fd] for device, fd in taken.items()})
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


def _free_units(folder: Path, device: str) -> int:
    """How many units of `device` no process holds (0 while a whole-device job holds it). A
    glance: each free unit is locked and let go at once."""
    device_fd = _try_lock(_device_file(folder, device), shared=True)
    if device_fd is None:
        return 0
    free = 0
    for unit in range(UNITS_PER_GPU):
        fd = _try_lock(_unit_file(folder, device, unit), mark=False)
        if fd is not None:
            os.close(fd)
            free += 1
    os.close(device_fd)
    return free


def _take_share(folder: Path, device: str, units: int) -> list[int] | None:
    """The fds of a shared lock on `device` and of `units` of its units, or None (nothing
    held) when it has fewer free."""
    device_fd = _try_lock(_device_file(folder, device), shared=True)
    if device_fd is None:
        return None
    fds = [device_fd]
    for unit in range(UNITS_PER_GPU):
        fd = _try_lock(_unit_file(folder, device, unit))
        if fd is not None:
            fds.append(fd)
            if len(fds) > units:
                return fds
    for fd in fds:
        os.close(fd)
    return None


def acquire_share(
    units: int,
    devices: list[str],
    folder: Path,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    say: Callable[[str], None] = print,
) -> str:
    """Take `units` of the UNITS_PER_GPU units of one of `devices` and return its id: the
    device with the most free units, the first listed among equals. Waits while none has
    room; the locks stay held until `release` or the end of the process. Raises TimeoutError
    after `timeout` seconds (None: wait as long as it takes)."""
    units = min(max(int(units), 1), UNITS_PER_GPU)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    noticed = started
    while True:
        free = {d: _free_units(folder, d) for d in devices if d not in _held}
        for device in sorted(free, key=lambda d: -free[d]):  # stable: the first among equals
            if free[device] < units:
                break
            fds = _take_share(folder, device, units)
            if fds is not None:
                _held[device] = fds
                return device
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            raise TimeoutError(f"{units} units of one of GPUs {devices} not free after {timeout} s")
        if now - noticed >= WAIT_NOTICE_SECONDS:
            say(
                f"GPU slots: waiting for {units}/{UNITS_PER_GPU} of one of {','.join(devices)} "
                f"(locks in {folder})"
            )
            noticed = now
        time.sleep(poll * random.uniform(0.5, 1.5))  # apart from jobs that wait alongside


def release(devices: list[str] | None = None) -> None:
    """Give back the devices this process holds (all of them by default)."""
    for device in list(_held) if devices is None else devices:
        for fd in _held.pop(device, []):
            os.close(fd)


def claim_gpus(
    gpus: int | None,
    environ: MutableMapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    *,
    share_units: int | None = None,
) -> list[str] | None:
    """Set CUDA_VISIBLE_DEVICES for a job that asks for `gpus` devices (its Snakemake `gpu`
    resource; None: it did not say, and nothing changes), or, without `gpu`, for a share of one
    device (`share_units`, its `gpu_share` resource). Returns the devices it got.

    Call it before torch is imported: CUDA reads the variable once, when it starts.
    """
    environ = os.environ if environ is None else environ
    job = f" (SLURM job {environ['SLURM_JOB_ID']})" if environ.get("SLURM_JOB_ID") else ""
    if gpus is None and share_units:
        return _claim_share(int(share_units), environ, say, job)
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
        say(_no_gpu_found(f"{gpus} GPU(s)", job))
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


def _claim_share(
    units: int, environ: MutableMapping[str, str], say: Callable[[str], None], job: str
) -> list[str] | None:
    """`claim_gpus` for a job that asks for `units` of one device: always through the locks,
    since other jobs may share the device (one visible device too)."""
    share = f"{units}/{UNITS_PER_GPU} of a GPU"
    devices = visible_devices(environ)
    if devices is None:
        say(_no_gpu_found(share, job))
        return None
    if not devices:
        raise UserError(
            f"The job asks for {share} but no GPU is visible{job} (CUDA_VISIBLE_DEVICES=''); "
            "remove `gpus` from the registry's resources, or run it where a GPU is"
        )
    folder = slots_dir(environ)
    device = acquire_share(units, devices, folder, say=say)
    environ["CUDA_VISIBLE_DEVICES"] = device
    say(
        f"GPU slots{job}: CUDA_VISIBLE_DEVICES={device} (locked in {folder}; {share}) "
        f"at {time.time():.3f}"
    )
    return [device]


def _no_gpu_found(asks: str, job: str) -> str:
    return (
        f"GPU slots{job}: the job asks for {asks} but no NVIDIA GPU was found (no "
        "CUDA_VISIBLE_DEVICES, no nvidia-smi); CUDA_VISIBLE_DEVICES left unset"
    )
