"""Safe file input/output: atomic writes, a restricted unpickler and file checksums.

Every results file is written to a temporary sibling and renamed into place, so
an interrupted run never leaves a half-written file behind. A temporary file
names its writer's process id; one whose writer is gone (killed mid-write) is
removed the next time anything is written beside it; nothing else ever is (see
:func:`is_stale_temp`).
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from utils.runtime.errors import DataError, OutputError

# A temporary file or folder of ours: ".<name>.sidtmp-<pid>-<random>.tmp". The tag makes a clash
# with a user's own hidden file unlikely; removal also needs the checks of :func:`is_stale_temp`.
TEMP_TAG = "sidtmp"
_TEMP_NAME = re.compile(rf"^\.(?P<name>.+)\.{TEMP_TAG}-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
# A temporary folder of ours holds this file, whose text is the folder's own name.
OWNER_FILE = ".semantic-ids-temp"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:  # not a process id at all
        return False
    return True


def _owned_by_us(path: Path) -> bool:
    """A regular file of this user, or a folder of this user that holds our owner file naming it.

    Symbolic links, devices and foreign folders are never ours, whatever their name says.
    """
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.getuid():
        return False
    if stat.S_ISREG(info.st_mode):
        return True
    if not stat.S_ISDIR(info.st_mode):
        return False
    owner = path / OWNER_FILE
    try:
        return stat.S_ISREG(owner.lstat().st_mode) and owner.read_text() == path.name
    except (OSError, UnicodeDecodeError):
        return False


def is_stale_temp(path: Path) -> bool:
    """True for a temporary file or folder that this toolkit made and whose writer has died.

    Four checks, all needed: our tagged name, a writer process that is gone, this user as owner,
    and a regular file or a folder holding our owner file. A user's hidden file or folder that
    merely looks like a temporary name is never taken for ours.
    """
    match = _TEMP_NAME.match(path.name)
    if not match:
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not _process_alive(pid) and _owned_by_us(path)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete our abandoned temporary files and folders in ``folder`` (left by a SIGKILL); returns
    them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if is_stale_temp(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def temp_prefix(name: str) -> str:
    """The start of a temporary name for ``name``, tagged with this process (to tell a stale one
    later)."""
    return f".{name}.{TEMP_TAG}-{os.getpid()}-"


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A new temporary folder beside ``parent/name``, marked as ours so a later cleanup may remove
    it once this process is gone. Created with the user's usual permissions (not mkdtemp's 0700).
    """
    folder = Path(tempfile.mkdtemp(prefix=temp_prefix(name), suffix=".tmp", dir=parent))
    os.chmod(folder, 0o777 & ~_umask())
    (folder / OWNER_FILE).write_text(folder.name)
    return folder


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:  # name the user's file, not our temporary one (a full disk, say)
        if exc.filename not in (None, str(tmp_path)):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_fully(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and check that all of it is stored: a write the file system cut
    short without an error fails here (OSError) instead of a cut file being renamed into place."""
    path.write_bytes(data)
    stored = path.stat().st_size
    if stored != len(data):
        short = f"short write ({stored:,} of {len(data):,} bytes stored)"
        raise OSError(errno.EIO, short, str(path))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        write_fully(tmp, data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    """Let numpy scalars and arrays and paths go into JSON without manual casting."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def to_json(obj: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    return (
        json.dumps(obj, indent=indent, sort_keys=sort_keys, default=_json_default, allow_nan=True)
        + "\n"
    )


def atomic_write_json(
    path: str | Path, obj: Any, indent: int | None = 2, sort_keys: bool = False
) -> None:
    atomic_write_text(path, to_json(obj, indent=indent, sort_keys=sort_keys))


JSON_LIMIT = 512 * 2**20  # no JSON file of this toolkit comes near it (results: a few MB)


def regular_file(path: str | Path, limit: int | None = None, fix: str = "give a file") -> Path:
    """``path``, refused (DataError) when it exists but is no regular file (a FIFO would block the
    read forever, /dev/zero never end) or is larger than ``limit`` bytes; a missing path passes,
    for the reader's own message."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return path
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a FIFO, device or socket); {fix}")
    if limit is not None and st.st_size > limit:
        raise DataError(f"{path}: {st.st_size:,} bytes, over the {limit:,} this reads; {fix}")
    return path


def read_json(path: str | Path, fix: str = "re-run the script that wrote it") -> Any:
    """Parse a JSON file; a truncated, non-UTF-8 or absurdly nested file is refused with its
    name, the line and ``fix``, and so is anything that is not a regular file of sane size."""
    regular_file(path, JSON_LIMIT, fix)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}), the file is damaged; {fix}"
        ) from exc
    return parse_json(text, path, fix)


def parse_json(text: str, path: str | Path, fix: str) -> Any:
    """``json.loads`` for a file's text: every way it can fail is a DataError naming the file.

    Nesting deeper than Python's recursion limit (a hostile ``[[[[...]]]]``) is refused like
    any other damage instead of ending in a RecursionError.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg}), the file is truncated or damaged; "
            f"{fix}"
        ) from exc
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a real file; {fix}") from None


def check_writable(
    outputs: dict[str, str | Path | None],
    folders: dict[str, str | Path | None] | None = None,
    inputs: Iterable[str | Path] = (),
) -> None:
    """Fail now, before any work, if an output file or folder cannot be written (keys name the
    flags), or if an output file is one of the run's ``inputs`` (a data file, the data folder, a
    semantic-ID file) or a path through an input file: writing it would destroy what the run
    reads. Outputs beside the inputs, inside an input folder, stay allowed (the split cache is)."""
    sources = [(Path(p), Path(p).resolve()) for p in inputs]
    for flag, path in outputs.items():
        if path is None:
            continue
        target = Path(path).resolve()
        for shown, source in sources:
            if target == source or (source in target.parents and not source.is_dir()):
                raise OutputError(
                    f"{flag} {path}: is this run's input {shown}, writing it would destroy it; "
                    "choose another path, nothing has been run yet"
                )
        if Path(path).is_dir():
            example = Path(path) / "results.json"
            raise OutputError(f"{flag} {path}: is a folder; give a file name such as {example}")
        _probe_folder(flag, Path(path).parent, path)
    for flag, folder in (folders or {}).items():
        if folder is not None:
            _probe_folder(flag, Path(folder), folder)


# Result-set locks this process holds (lock file -> descriptor), released at commit or at exit;
# the kernel drops a flock whose holder dies, so a killed run never blocks the next one.
_HELD_LOCKS: dict[Path, int] = {}


def lock_output(flag: str, path: str | Path) -> None:
    """Hold ``.<name>.lock`` beside ``path`` until the run commits (:func:`unlock_output`) or this
    process exits, so two runs never write one result set at once: a second run is refused in one
    line instead of interleaving its files."""
    lock = _lock_file(path)
    if lock in _HELD_LOCKS:  # a second run in the same process (tests call main() twice)
        return
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{flag} {path}: another run is writing this result set now (it holds {lock}); "
                "wait for it to finish or choose another path"
            ) from None
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # locked a file that its finishing holder had just removed: try again
    _HELD_LOCKS[lock] = fd


def unlock_output(path: str | Path) -> None:
    """Let go of ``path``'s result-set lock: its run has committed."""
    _unlock(_lock_file(path))


def _lock_file(path: str | Path) -> Path:
    return Path(path).with_name(f".{Path(path).name}.lock").resolve()


def _unlock(lock: Path) -> None:
    """Remove the lock file while still holding it (so no waiting run locks a removed file), then
    close it."""
    fd = _HELD_LOCKS.pop(lock, None)
    if fd is not None:
        with suppress(OSError):
            os.unlink(lock)
        os.close(fd)


@atexit.register
def _release_locks() -> None:
    for lock in list(_HELD_LOCKS):
        _unlock(lock)


def _probe_folder(flag: str, folder: Path, shown: str | Path) -> None:
    """Create ``folder`` if needed and write (then delete) a temporary file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix("probe"), suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(
            f"{flag} {shown}: cannot write there ({exc.strerror or exc}); choose a writable "
            "path, nothing has been run yet"
        ) from exc


def sha256_files(paths: Iterable[str | Path]) -> str:
    """One checksum over several files (names and contents), stable across machines."""
    digest = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        digest.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise a read-modify-write of ``path`` across processes (sweeps that several processes
    add to), through an exclusive lock on ``<path>.lock`` (git-ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
