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
  # your own catalogue (docs/CUSTOM_DATA.md): interactions + item metadata
  python prepare_data.py --dataset custom --interactions ratings.csv --items items.csv \
      --data-dir data/shop --rating-col rating --k-core 5
  # Amazon Reviews 2023, read directly
  python prepare_data.py --dataset custom --layout amazon2023 --interactions All_Beauty.jsonl.gz \
      --items meta_All_Beauty.jsonl.gz --data-dir data/all-beauty
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import json
from pathlib import Path

from utils.data import amazon2023
from utils.data.custom import DEDUP_RULES, FEEDBACK, ORDERS, CleaningRules, InteractionColumns
from utils.data.custom_meta import MISSING_META
from utils.data.prepare import prepare
from utils.data.prepare_custom import CustomSource, prepare_custom
from utils.data.specs import SPECS
from utils.runtime.argtypes import bounded, encoding
from utils.runtime.cli import HelpFormatter, setup_logging, show_progress
from utils.runtime.errors import add_debug_flag, run_script

K_CORE = bounded(int, 0, 10_000, why="no user or item has that many interactions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--dataset",
        choices=[*sorted(SPECS), "custom"],
        default="beauty",
        help="which data set (default: beauty); custom: your own files (see below)",
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
    _add_custom_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.quiet)
    if args.dataset == "custom":
        summary = _prepare_custom(parser, args)
        if not args.quiet:
            print(json.dumps(summary, indent=2))
        return 0
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


def _add_custom_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "your own catalogue (--dataset custom; column reference: docs/CUSTOM_DATA.md)"
    )
    g.add_argument("--interactions", help="CSV, TSV, Parquet or JSON lines (.gz allowed)")
    g.add_argument("--items", help="item metadata: CSV, TSV, Parquet or JSON lines (.gz allowed)")
    g.add_argument(
        "--layout",
        choices=("generic", "amazon2023"),
        default="generic",
        help="amazon2023: the column names of Amazon Reviews 2023 (reviews + meta JSONL)",
    )
    g.add_argument("--user-col", help="user column (default user_id)")
    g.add_argument("--item-col", help="item column of the interactions (default item_id)")
    g.add_argument("--time-col", help="time column (default timestamp; 'none': file order)")
    g.add_argument("--rating-col", help="rating column (default: none, implicit feedback)")
    g.add_argument("--time-unit", choices=("s", "ms"), help="numeric times in (default s)")
    g.add_argument("--time-format", help="strptime format of text times (default ISO 8601)")
    g.add_argument("--item-id-col", help="item column of the metadata (default: --item-col)")
    g.add_argument(
        "--text-columns",
        help="FIELD=COLUMN[+COLUMN],...: metadata columns for title, brand, categories, "
        "description, price, sales_rank, year (default: the columns named like a field); with "
        "--layout amazon2023 it changes only the fields it names (FIELD= drops one)",
    )
    g.add_argument(
        "--drop-incomplete",
        action="store_true",
        help="drop interaction rows with an empty user, item, time or rating (counted in the "
        "cleaning report) instead of failing at the first",
    )
    g.add_argument(
        "--allow-empty-text",
        action="store_true",
        help="prepare even when over half the items would have no text (their semantic IDs "
        "would encode only a fallback 'Item <id>')",
    )
    g.add_argument("--list-sep", default="|", help="separator of categories given as text")
    g.add_argument("--sep", help="CSV separator (default ',' for .csv, tab for .tsv)")
    g.add_argument(
        "--encoding", type=encoding, default="utf-8", help="text encoding of CSV/JSON files"
    )
    g.add_argument("--k-core", type=K_CORE, default=5, help="k-core filter (default 5; 1: none)")
    g.add_argument("--dedup", choices=DEDUP_RULES, default="latest", help="repeated pairs keep")
    g.add_argument("--order", choices=ORDERS, default="id", help="index order of users/items")
    g.add_argument("--feedback", choices=FEEDBACK, default="auto", help="ratings or implicit")
    g.add_argument(
        "--missing-meta",
        choices=MISSING_META,
        default="error",
        help="items without a metadata row: fail (default), keep (text 'Item <id>'), drop",
    )


def _prepare_custom(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    if not args.interactions or not args.items or not args.data_dir:
        parser.error("--dataset custom needs --interactions, --items and --data-dir")
    amazon = args.layout == "amazon2023"
    base = amazon2023.REVIEW_COLUMNS if amazon else InteractionColumns()
    time_col = args.time_col if args.time_col is not None else base.time
    columns = InteractionColumns(
        user=args.user_col or base.user,
        item=args.item_col or base.item,
        time=None if time_col in ("", "none") else time_col,
        rating=args.rating_col or base.rating,
        time_unit=args.time_unit or base.time_unit,
        time_format=args.time_format,
    )
    source = CustomSource(
        Path(args.interactions),
        Path(args.items),
        columns,
        args.item_id_col or (amazon2023.META_ITEM_COLUMN if amazon else None),
        args.text_columns,
        args.missing_meta,
        args.encoding,
        args.sep,
        args.list_sep,
        amazon2023.META_TEXT_COLUMNS if amazon else None,
        args.allow_empty_text,
        args.drop_incomplete,
    )
    rules = CleaningRules(args.k_core, args.dedup, args.order, args.feedback)
    return prepare_custom(source, args.data_dir, rules)


if __name__ == "__main__":
    run_script(main)
