"""`relay-center quarantine list | show`: what the center set apart, straight against its
database (docs/operations.md, "Quarantine").

    relay-center quarantine list --config center.toml [--reason R] [--gateway G] [--limit N]
    relay-center quarantine show ID --config center.toml [--raw]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

from center.cli.loading import Subparsers, load_or_report


def add_parsers(sub: Subparsers) -> None:
    q = sub.add_parser("quarantine", help="records and messages the center set apart")
    actions = q.add_subparsers(required=True)
    listing = actions.add_parser("list", help="newest first, without their content")
    listing.add_argument("--reason", help="e.g. invalid, unstorable, conflict, store_error")
    listing.add_argument("--gateway", help="only this gateway's records")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="one entry with its content as received")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="only the content, byte for byte")
    show.set_defaults(func=cmd_show)
    for p in (listing, show):
        p.add_argument("--config", required=True, help="center TOML file")


def _url(args: argparse.Namespace) -> str | None:
    config = load_or_report(args.config)
    return config.database_url if config is not None else None


def cmd_list(args: argparse.Namespace) -> int:
    from center import quarantine
    from center.store.db import one_connection

    url = _url(args)
    if url is None:
        return 2
    with one_connection(url, up_to_date=True) as conn:
        rows = quarantine.list_quarantine(conn, max(1, args.limit), args.reason, args.gateway)
    if not rows:
        sys.stdout.write("quarantine is empty\n")
    for r in rows:
        where = f"{r['gateway_id']}/{r['session']}/{r['seq']}" if r["gateway_id"] else "-"
        index = "" if r["record_index"] is None else f"[{r['record_index']}]"
        sys.stdout.write(
            f"{r['id']:>6}  {r['received_at']}  {r['scope']:<7} {r['reason']:<12} "
            f"{where:<28} {r['topic']}{index}  {r['size']} B  {r['detail'][:120]}\n"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from center import quarantine
    from center.store.db import one_connection

    url = _url(args)
    if url is None:
        return 2
    with one_connection(url, up_to_date=True) as conn:
        doc = quarantine.get_quarantined(conn, args.id)
    if doc is None:
        sys.stderr.write(f"relay-center quarantine show: no entry {args.id}\n")
        return 1
    if args.raw:
        content = doc["content"]
        data = content.encode() if content is not None else base64.b64decode(doc["content_base64"])
        sys.stdout.buffer.write(data)
        return 0
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")
    return 0
