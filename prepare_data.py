"""Put a data set in place and check it: from a local folder, or downloaded from its official
source.

Examples:
  # from ../shared/data/beauty into beauty/
  python prepare_data.py --dataset beauty
  # into data/ml-100k/
  python prepare_data.py --dataset ml-100k
  # from files.grouplens.org
  python prepare_data.py --dataset ml-100k --download
  # P5's bundle via Google Drive
  python prepare_data.py --dataset toys --download --data-dir data/toys
"""

from __future__ import annotations

import argparse
import json

from utils.data.prepare import prepare
from utils.data.specs import SPECS
from utils.runtime.cli import HelpFormatter, setup_logging, show_progress
from utils.runtime.errors import add_debug_flag, run_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--dataset",
        choices=sorted(SPECS),
        default="beauty",
        help="which data set (default: beauty)",
    )
    parser.add_argument(
        "--data-dir", help="where to put it (default: beauty/ for beauty, data/<name>/ otherwise)"
    )
    parser.add_argument(
        "--source",
        help="local folder with the files (default: ../shared/data/<name> when it exists)",
    )
    parser.add_argument(
        "--download", action="store_true", help="download the official public files instead"
    )
    parser.add_argument(
        "--url", help="download from this URL (a mirror of the official zip archive)"
    )
    parser.add_argument(
        "--link", action="store_true", help="symlink local files instead of copying them"
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the checksum and known-count checks"
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    setup_logging(args.quiet)
    summary = prepare(
        args.dataset,
        args.data_dir,
        args.source,
        args.download,
        args.url,
        args.link,
        not args.no_verify,
        progress=show_progress(args),
    )
    if not args.quiet:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    run_script(main)
