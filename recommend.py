"""Recommendations from a trained model: the top-k items for a user, or for a history of items
given by ID or title, from any checkpoint the trainers write (TIGER item- or token-level and
SASRec from tiger_train_eval.py, MF from mf_train_eval.py, the CTR models from
neural_train_eval.py); and new items' semantic IDs from their text, with the catalogue items that
share their prefix.

The checkpoint records its data set, split, semantic IDs and model configuration; one of other
data or IDs is refused in one line with the command that re-creates it. The history's items are
left out of the list unless --include-history.

Examples:
  python recommend.py --user A1YJEY40YUW4SE \\
      --checkpoint checkpoints/tiger-tiger_item-beauty-quick-paper-seed0-ids3d68d359b799.pt
  python recommend.py --checkpoint <.pt> --users users.txt > lists.jsonl   # one user ID a line
  python recommend.py --checkpoint <.pt> --histories histories.jsonl   # {"history": [...]} a line
  python recommend.py --checkpoint checkpoints/tiger-sasrec-beauty-quick-paper-seed0.pt \\
      --history B004756YJA "Nail Polish Remover" --k 5 --json
  python recommend.py --checkpoint checkpoints/mf-mf_id-ml-100k-temporal-seed0.pt --user 196
  python recommend.py --data-dir beauty --new-item 'title=Rose face serum' 'brand=Acme' \\
      'categories=Beauty, Skin Care, Face'
  python recommend.py --data-dir beauty --new-items new_items.jsonl   # semantic_id_generator.py
                                                                      # --help: the line format
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from src.semantic_ids.generator import DEFAULT_CACHE_DIR
from src.serving.catalogue import item_index, item_row, user_history, user_index
from src.serving.checkpoint import load_trained
from src.serving.new_items import describe_new_items
from src.serving.recommend import BATCH, Request, recommend, recommend_many
from utils.data.load import load_dataset
from utils.runtime import argtypes
from utils.runtime.cli import add_semantic_dir_arg, setup_logging
from utils.runtime.environment import resolve_device
from utils.runtime.errors import DataError, UsageError, add_debug_flag, printable, run_script
from utils.runtime.io import parse_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", help="a checkpoint written by one of the trainers")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="an original user ID of the data (a reviewerID, a user id)")
    who.add_argument(
        "--history",
        nargs="+",
        metavar="ITEM",
        help="items in the order consumed, oldest first: item IDs or titles (exact, or a "
        "case-insensitive part of exactly one title)",
    )
    who.add_argument(
        "--users",
        metavar="FILE",
        help="a batch: one user ID a line (or JSON lines with 'user'); one JSON line out per user, "
        "the model and data loaded once",
    )
    who.add_argument(
        "--histories",
        metavar="FILE",
        help='a batch: JSON lines {"id": optional name, "history": [item IDs or titles]}; one '
        "JSON line out per history",
    )
    p.add_argument("--k", type=argtypes.list_length, default=10, help="list length (default 10)")
    p.add_argument(
        "--include-history",
        action="store_true",
        help="keep the history's items in the list (default: left out)",
    )
    p.add_argument(
        "--cold-share",
        type=argtypes.fraction,
        default=0.0,
        help="TIGER: reserve this share of the top 10 (rounded up) for items the model never "
        "trained on (the paper's cold-start ranking; default 0 = plain beam search)",
    )
    p.add_argument(
        "--new-item",
        nargs="+",
        action="append",
        metavar="FIELD=VALUE",
        help="a new item by its fields (title=, brand=, categories=a, b, description=, price=, "
        "year=, id=); repeat the flag for more items",
    )
    p.add_argument(
        "--new-items",
        help="new items as JSON lines (the format of semantic_id_generator.py --encode-texts)",
    )
    p.add_argument(
        "--data-dir",
        help="the data folder (default: the one the checkpoint was trained on; needed without "
        "--checkpoint)",
    )
    add_semantic_dir_arg(
        p, "the folder of semantic_ids.json (default: the checkpoint's, else --data-dir)"
    )
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache folder")
    p.add_argument("--device", type=argtypes.device_name, default="cpu", help="default: cpu")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.checkpoint is None and not (args.new_item or args.new_items):
        p.error("give --checkpoint (with --user or --history), or new items to encode")
    if args.checkpoint and not (args.user or args.history or args.users or args.histories):
        p.error("--checkpoint: give --user, --history, --users or --histories")
    if args.checkpoint is None and not args.data_dir:
        p.error("new items without --checkpoint need --data-dir")
    return args


SHOWN_HISTORY = 10  # history items printed above a table


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a fixed-width text table (titles cut to 50 characters)."""

    def cell(value: Any, column: str) -> str:
        if column == "score":
            return "-" if value is None else f"{value:.4f}"
        return printable(str(value))[:50]

    cells = [[cell(r[c], c) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = [columns, ["-" * w for w in widths], *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def batch_requests(path: Path, by_user: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, {"user": id} or {"id": name, "history": [...]}) per non-empty line of a batch."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give one request per line")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            where = f"{path}, line {lineno}"
            if not line:
                continue
            if by_user and not line.startswith("{"):
                yield where, {"user": line}
                continue
            rec = parse_json(line, where, "give one JSON object per line")
            key = "user" if by_user else "history"
            ok = isinstance(rec, dict) and (
                isinstance(rec.get(key), (str, int)) if by_user else _item_list(rec.get(key))
            )
            if not ok:
                what = "a user ID" if by_user else "a list of item IDs or titles"
                raise DataError(f"{where}: expected an object with {key!r}: {what}")
            yield where, rec


def _item_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def run_batch(args: argparse.Namespace, trained: Any) -> int:
    """--users / --histories: one JSON line per request on stdout, the model loaded once and the
    requests ranked ``BATCH`` at a time; the time per request on stderr."""
    ds, started = trained.ds, time.perf_counter()
    by_user = args.users is not None
    lines, reqs = [], []
    for where, rec in batch_requests(Path(args.users or args.histories), by_user):
        try:
            if by_user:
                user = user_index(ds, str(rec["user"]))
                history = user_history(ds, user)
            else:
                user, history = None, np.array([item_index(ds, q) for q in rec["history"]])
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        reqs.append(Request(history, user, args.k, args.include_history, args.cold_share))
        line = {"user": str(rec["user"])} if by_user else {"id": rec.get("id", where)}
        lines.append({**line, "history": [str(ds.item_ids[i]) for i in history]})
    for start in range(0, len(reqs), BATCH):
        chunk = slice(start, start + BATCH)
        for line, rows in zip(lines[chunk], recommend_many(trained, reqs[chunk])):
            print(json.dumps({**line, "recommendations": rows}, ensure_ascii=False), flush=True)
    seconds, n = time.perf_counter() - started, len(reqs)
    sys.stderr.write(
        f"{n} requests in {seconds:.2f} s ({1000 * seconds / max(n, 1):.1f} ms each)\n"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(quiet=True)
    device = resolve_device(args.device)
    out: dict[str, Any] = {}
    trained = None
    if args.checkpoint:
        trained = load_trained(args.checkpoint, args.data_dir, args.semantic_dir, device)
        ds = trained.ds
        if args.users or args.histories:
            return run_batch(args, trained)
        user = None if args.user is None else user_index(ds, args.user)
        if args.cold_share and trained.kind != "tiger":
            raise UsageError("--cold-share applies to TIGER checkpoints only")
        if user is not None:
            history = user_history(ds, user)
        else:
            history = np.array([item_index(ds, q) for q in args.history], dtype=np.int64)
        req = Request(history, user, args.k, args.include_history, args.cold_share)
        shown = [item_row(ds, None, int(i)) for i in req.history[-SHOWN_HISTORY:]]
        out.update(
            checkpoint=str(trained.path),
            model=trained.spec["name"],
            dataset=ds.name,
            user=args.user,
            history=[str(ds.item_ids[i]) for i in req.history],
            history_excluded=not args.include_history,
            recommendations=recommend(trained, req),
        )
    if args.new_item or args.new_items:
        ds = trained.ds if trained else load_dataset(args.data_dir)
        ids_dir = Path(
            args.semantic_dir or (trained.spec["semantic_dir"] if trained else args.data_dir)
        )
        out["new_items"] = describe_new_items(
            ds, ids_dir, args.new_item or [], args.new_items, args.cache_dir, device
        )
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if "recommendations" in out:
        who = f"user {args.user}" if args.user else "the given history"
        print(
            f"{out['model']} ({out['checkpoint']}): top {args.k} for {who} "
            f"({len(out['history'])} items{', left out' if not args.include_history else ''})"
        )
        more = len(out["history"]) > len(shown)
        print(
            "history, oldest first"
            + (f" (the last {len(shown)} of {len(out['history'])})" if more else "")
            + ": "
            + printable("; ".join(f"{r['item_id']} ({r['title'][:40]})" for r in shown))
        )
        print(table(out["recommendations"], ["rank", "item_id", "title", "semantic_id", "score"]))
    for item in out.get("new_items", []):
        text = printable(f"{item['id']}: semantic ID {item['semantic_id']}")
        print(f"\nnew item {text}\n  text: {printable(item['text'])}")
        print(table(item["neighbours"], ["shared_levels", "item_id", "title", "semantic_id"]))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    run_script(main, user_errors=(ValueError,))
