"""Put a data set in place: copy it from a local folder or download the official public files.

Either way the result is verified: known checksums where we have them, then a
full load through :func:`utils.data.load.load_dataset`, whose summary is returned.

Preparation is a transaction: the new files are staged in a work folder beside
the target (marked as ours, :func:`utils.runtime.io.make_temp_dir`) together with (hard
links to) everything else the target holds, verified there, and only then
swapped in by two renames. A failure at
any step leaves the previous folder exactly as it was; a run killed between the
two renames is rolled back by the next one.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from utils.data.load import load_dataset
from utils.data.specs import CUSTOM_FILES, SPECS, DatasetSpec
from utils.runtime.environment import repo_root
from utils.runtime.errors import DataError, OutputError
from utils.runtime.io import (
    TEMP_TAG,
    is_stale_temp,
    make_temp_dir,
    remove_stale_temps,
    sha256_file,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

ML_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
P5_DRIVE_ID = "1qGxgmx7G_WB7JE4Cn_bEcZ_o_NAJLE3G"


def default_source(name: str) -> Path | None:
    """The shared local copy beside the checkout (``../shared/data/<name>``), when it exists."""
    candidate = repo_root().parent / "shared" / "data" / name
    return candidate if candidate.is_dir() else None


def verify_checksums(folder: Path, checksums: dict[str, str], origin: str) -> None:
    for name, expected in checksums.items():
        path = folder / name
        if path.exists() and sha256_file(path) != expected:
            raise DataError(
                f"{path}: sha256 differs from the official file ({origin}); "
                "the copy is damaged or from another release. "
                "Delete it and fetch it again (or pass --no-verify to accept it knowingly)."
            )


def _check_complete(staging: Path, spec: DatasetSpec) -> None:
    missing = [f for f in spec.required if not (staging / f).exists()]
    if missing:
        raise DataError(
            f"{staging}: missing {', '.join(missing)} for the {spec.name} data set; "
            "point --source at a folder with these files or use --download."
        )


def _link_or_copy(src: str, dst: str) -> None:
    """Hard link when the file system allows it (instant, no extra space), else a copy."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def stage_others(target: Path, data_names: set[str], work: Path) -> Path:
    """The staging folder of a :func:`transaction`, ``work/new``, holding ``target``'s other
    contents (semantic IDs, split cache, the user's own files: hard links); the old
    ``data_names`` are left out, to be replaced."""
    staging = work / _NEW
    if target.is_dir():
        shutil.copytree(
            target,
            staging,
            symlinks=True,
            copy_function=_link_or_copy,
            ignore=lambda d, names: data_names & set(names) if Path(d) == target else (),
        )
    else:
        staging.mkdir()  # the user's usual permissions (umask), like any folder they make
    return staging


def _stage(
    source: Path, target: Path, spec: DatasetSpec, work: Path, link: bool = False
) -> list[str]:
    """Fill ``work/new`` with ``target``'s other contents plus the new data files; returns the
    names placed."""
    staging = stage_others(target, set(spec.required + spec.optional), work)
    placed = []
    for name in spec.required + spec.optional:
        src = source / name
        if not src.exists():
            continue
        if link:
            (staging / name).symlink_to(src.resolve())
        else:
            shutil.copyfile(src, staging / name)
        placed.append(name)
    return placed


# Inside a preparation's work folder (utils.runtime.io.make_temp_dir): the staged folder, and
# the previous target while the two renames of the swap run.
_NEW, _OLD = "new", "old"


def _swap_in(work: Path, target: Path) -> None:
    """Replace ``target`` by ``work/new``: the old folder moves into ``work`` first, and goes with
    it."""
    if target.exists():
        os.replace(target, work / _OLD)
    os.replace(work / _NEW, target)
    shutil.rmtree(work, ignore_errors=True)


def _recover(target: Path) -> None:
    """Finish what a killed run left: put back a target moved aside, then drop our stale work
    folders (only folders this toolkit marked as its own; see utils.runtime.io.is_stale_temp)."""
    prefix = f".{target.name}.{TEMP_TAG}-"
    for work in target.parent.glob(f"{glob.escape(prefix)}*"):
        if (work / _OLD).is_dir() and not target.exists() and is_stale_temp(work):
            os.replace(work / _OLD, target)
            log.warning("%s: restored the previous folder after an interrupted preparation", target)
    remove_stale_temps(target.parent)


def _verified_summary(folder: Path, spec: DatasetSpec, verify: bool, shown: Path) -> dict[str, Any]:
    """Load ``folder`` fully and check the known counts; messages name ``shown`` (the real
    target)."""
    ds = load_dataset(folder)
    counts = (ds.n_users, ds.n_items, ds.n_interactions)
    if verify and spec.expected_counts and counts != spec.expected_counts:
        raise DataError(
            f"{shown}: found {counts} users/items/interactions, the official {spec.name} has "
            f"{spec.expected_counts}; the files are incomplete or from another release."
        )
    return {**ds.summary(), "name": shown.resolve().name}


def install_verified(
    source: Path, target: Path, spec: DatasetSpec, verify: bool, link: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Stage, load and check, then swap in; on any failure ``target`` is untouched."""

    def fill(work: Path) -> tuple[dict[str, Any], list[str]]:
        placed = _stage(source, target, spec, work, link)
        staging = work / _NEW
        try:
            summary = _verified_summary(staging, spec, verify, target)
        except DataError as exc:  # name the user's file, not its staged copy
            raise DataError(str(exc).replace(str(staging), str(source))) from exc
        return summary, placed

    return transaction(target, fill)


def transaction(target: Path, fill: Callable[[Path], T]) -> T:
    """Run ``fill(work)``, which stages the new folder in ``work/new`` (see
    :func:`stage_others`), then swap it in for ``target``; on any failure ``target`` is
    untouched. A ``target`` that is a symbolic link is prepared where it points: the swap renames
    the real folder, so the user's link stays a link."""
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    work = make_temp_dir(target.parent, target.name)
    try:
        result = fill(work)
        _swap_in(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return result


def download(url: str, dest: Path, timeout: float = 30.0, progress: bool = False) -> None:
    """HTTP(S) download with a progress bar, written to a temporary file and renamed when
    complete."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"download {dest.name}",
                disable=not progress,
            ) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({exc}). No network here? Copy the files onto this "
            "machine and use --source FOLDER instead."
        ) from exc


def _download_p5(spec: DatasetSpec, workdir: Path, progress: bool = False) -> Path:
    try:
        import gdown
    except ImportError as exc:  # pragma: no cover - gdown is in requirements.txt
        raise DataError(
            "the P5 download needs the gdown package: pip install -r requirements.txt"
        ) from exc
    archive = workdir / "p5_data.zip"
    try:
        result = gdown.download(id=P5_DRIVE_ID, output=str(archive), quiet=not progress)
    except Exception as exc:  # gdown raises many types on network and Drive-quota errors
        raise DataError(
            f"could not download P5's data bundle from Google Drive ({exc}); "
            "use --source FOLDER instead."
        ) from exc
    if not result or not archive.exists():
        raise DataError(
            "Google Drive returned no file for P5's data bundle (quota or no network); "
            "use --source FOLDER instead."
        )
    return archive


def _extract(archive: Path, spec: DatasetSpec, workdir: Path) -> Path:
    """Extract the data set's files from the archive, wherever they sit inside it."""
    wanted = set(spec.required + spec.optional)
    out = workdir / "extracted"
    out.mkdir()
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                parts = Path(member.filename).parts
                # P5's bundle holds several data sets: take only this one's folder.
                if parts and parts[-1] in wanted and (spec.name in parts or spec.name == "ml-100k"):
                    with z.open(member) as src, open(out / parts[-1], "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{archive}: not a valid zip archive ({exc}); the download is damaged, try again."
        ) from exc
    return out


def _check_foreign(target: Path, spec: DatasetSpec) -> None:
    """Refuse a target folder holding another layout's data files: the folder would then load as
    whichever layout its loader checks first (MovieLens placed beside Beauty hid Beauty)."""
    mine = set(spec.required + spec.optional)
    known = {f for other in SPECS.values() for f in other.required + other.optional}
    foreign = sorted(
        n for n in known | set(CUSTOM_FILES) if n not in mine and (target / n).exists()
    )
    if foreign:
        raise OutputError(
            f"--data-dir {target}: holds another data set's files ({', '.join(foreign)}); "
            f"prepare {spec.name} into a folder of its own (nothing was changed)"
        )


def prepare(
    name: str,
    data_dir: str | Path | None = None,
    source: str | Path | None = None,
    download_files: bool = False,
    url: str | None = None,
    link: bool = False,
    verify: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Place and verify data set ``name``; returns the loaded data set's summary (``progress``:
    download bars)."""
    if name not in SPECS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(SPECS)}")
    spec = SPECS[name]
    target = Path(data_dir or repo_root() / spec.default_dir)
    if target.exists() and not target.is_dir():
        raise OutputError(
            f"--data-dir {target}: is a file, not a folder; give a new or existing folder "
            "(nothing was moved)"
        )
    _check_foreign(target, spec)
    if source is not None and Path(source).resolve() == target.resolve():
        raise OutputError(
            f"--data-dir {target}: is the --source folder itself; give another --data-dir "
            "(nothing was changed)"
        )
    checksums = spec.checksums if verify else {}
    with tempfile.TemporaryDirectory(prefix="prepare-") as tmp:
        workdir = Path(tmp)
        if source is None and not download_files and url is None:
            source = default_source(name)
            if source is None:
                log.info(
                    "no local copy of %s at ../shared/data/%s: downloading the official files",
                    name,
                    name,
                )
        if source is not None:
            files, origin = Path(source), f"local folder {source}"
            if not files.is_dir():
                raise DataError(
                    f"{files}: no such folder; pass --source with the folder that holds "
                    f"the {name} files."
                )
        else:
            origin = url or (ML_URL if name == "ml-100k" else f"Google Drive {P5_DRIVE_ID}")
            if name == "ml-100k" or url:
                archive = workdir / "download.zip"
                download(url or ML_URL, archive, progress=progress)
            else:
                archive = _download_p5(spec, workdir, progress)
            files = _extract(archive, spec, workdir)
            if url and url != ML_URL:
                checksums = {}  # a mirror or a test server: no official checksum applies
                log.info("no known checksums for %s; verifying by loading only", url)
        _check_complete(files, spec)
        verify_checksums(files, checksums, origin)
        summary, placed = install_verified(
            files, target, spec, verify, link=link and source is not None
        )
    log.info("placed %s in %s from %s", ", ".join(placed), target, origin)
    summary["source"] = origin
    summary["data_dir"] = str(target)
    return summary
