"""Data preparation from a local folder and from a download served on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests.synthetic import write_movielens, write_p5
from utils.data.prepare import prepare, verify_checksums
from utils.data.specs import SPECS
from utils.runtime.errors import DataError, OutputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; stops after the test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_extracts_and_verifies(tmp_path, http_root):
    root, base = http_root
    src = write_movielens(tmp_path / "src" / "ml-100k", n_users=10, n_items=12)
    with zipfile.ZipFile(root / "ml-100k.zip", "w") as z:
        for f in src.iterdir():
            z.write(f, f"ml-100k/{f.name}")
    summary = prepare("ml-100k", tmp_path / "out", url=f"{base}/ml-100k.zip", verify=False)
    assert summary["users"] == 10 and summary["items"] == 12
    assert (tmp_path / "out" / "u.data").read_bytes() == (src / "u.data").read_bytes()
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_download_errors_are_clear(tmp_path, http_root):
    root, base = http_root
    (root / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        prepare("ml-100k", tmp_path / "out", url=f"{base}/broken.zip")
    with pytest.raises(DataError, match="could not download .*No network here"):
        prepare("ml-100k", tmp_path / "out", url=f"{base}/missing.zip")
    assert not (tmp_path / "out").exists()


def test_local_copy_and_known_counts(tmp_path, monkeypatch):
    src = write_p5(tmp_path / "src", n_users=8, n_items=9)
    summary = prepare("toys", tmp_path / "toys", source=src)
    assert summary["users"] == 8 and (tmp_path / "toys" / "meta.json.gz").exists()
    # Beauty's official files are checked by checksum, then by their known counts.
    with pytest.raises(DataError, match="sha256 differs"):
        prepare("beauty", tmp_path / "beauty", source=src)
    monkeypatch.setitem(SPECS, "beauty", replace(SPECS["beauty"], checksums={}))
    with pytest.raises(
        DataError, match=r"found \(8, 9, \d+\) users/items/interactions, the official beauty has"
    ):
        prepare("beauty", tmp_path / "beauty", source=src)


def test_a_folder_of_another_data_set_or_the_source_itself_is_refused(tmp_path):
    """MovieLens prepared into a folder holding P5 files would make that folder load as
    MovieLens; the source folder as the target would be replaced by its own copy."""
    p5 = write_p5(tmp_path / "toys", n_users=8, n_items=9)
    before = {f.name: f.read_bytes() for f in p5.iterdir() if f.is_file()}
    ml = write_movielens(tmp_path / "ml")
    with pytest.raises(OutputError, match=r"holds another data set's files \(datamaps.json"):
        prepare("ml-100k", p5, source=ml)
    assert {f.name: f.read_bytes() for f in p5.iterdir() if f.is_file()} == before
    with pytest.raises(OutputError, match="is the --source folder itself"):
        prepare("toys", p5, source=p5)


def test_checksum_mismatch_and_missing_source(tmp_path):
    src = write_movielens(tmp_path / "src")
    with pytest.raises(DataError, match="sha256 differs"):
        verify_checksums(src, {"u.data": "0" * 64}, "test")
    with pytest.raises(DataError, match="no such folder"):
        prepare("ml-100k", tmp_path / "out", source=tmp_path / "nowhere")
    (src / "u.item").unlink()
    with pytest.raises(DataError, match="missing u.item"):
        prepare("ml-100k", tmp_path / "out", source=src)


def test_without_a_local_copy_the_official_files_are_downloaded(tmp_path, http_root, monkeypatch):
    root, base = http_root
    src = write_movielens(tmp_path / "src" / "ml-100k", n_users=6, n_items=8)
    with zipfile.ZipFile(root / "ml-100k.zip", "w") as z:
        for f in src.iterdir():
            z.write(f, f"ml-100k/{f.name}")
    monkeypatch.setattr("utils.data.prepare.default_source", lambda name: None)
    monkeypatch.setattr("utils.data.prepare.ML_URL", f"{base}/ml-100k.zip")
    summary = prepare("ml-100k", tmp_path / "out", verify=False)
    assert summary["source"] == f"{base}/ml-100k.zip" and summary["users"] == 6
