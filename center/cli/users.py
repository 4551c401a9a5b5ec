"""`relay-center user …`: console users, straight against the center's database.

    relay-center user add --config center.toml alice --role operator
    relay-center user passwd --config center.toml alice
    relay-center user role --config center.toml alice --role engineer
    relay-center user remove --config center.toml alice
    relay-center user list --config center.toml

The password is asked twice on the terminal, or read from the first line of standard
input with `--password-stdin` (for scripts; never on the command line, which `ps` shows).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from center.auth.roles import ROLES
from center.auth.users import UserError, UserStore
from center.cli.loading import Subparsers, load_or_report, migrated_engine
from center.clock import SystemClock


def add_parsers(sub: Subparsers) -> None:
    user = sub.add_parser("user", help="console users: add, passwd, role, remove, list")
    actions = user.add_subparsers(required=True)
    for name, func, text in (
        ("add", _add, "add a user with a role"),
        ("passwd", _passwd, "set a user's password (ends their sessions)"),
        ("role", _role, "change a user's role (ends their sessions)"),
        ("remove", _remove, "remove a user (ends their sessions)"),
        ("list", _list, "list users and roles"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="center TOML file")
        if name != "list":
            p.add_argument("username")
        if name in ("add", "role"):
            p.add_argument("--role", required=True, choices=ROLES)
        if name in ("add", "passwd"):
            p.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        p.add_argument("--by", default=None, help="who makes the change; default: login name")
        p.set_defaults(func=_run, action=func)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _add(store: UserStore, args: argparse.Namespace, **who: Any) -> str:
    store.add(args.username, _password(args), args.role, **who)
    return f"user {args.username} added ({args.role})"


def _passwd(store: UserStore, args: argparse.Namespace, **who: Any) -> str:
    store.set_password(args.username, _password(args), **who)
    return f"password of {args.username} changed; their sessions ended"


def _role(store: UserStore, args: argparse.Namespace, **who: Any) -> str:
    store.set_role(args.username, args.role, **who)
    return f"{args.username} is now {args.role}; their sessions ended"


def _remove(store: UserStore, args: argparse.Namespace, **who: Any) -> str:
    store.remove(args.username, **who)
    return f"user {args.username} removed"


def _list(store: UserStore, args: argparse.Namespace, **who: Any) -> str:
    users = store.list()
    return "\n".join(f"{u.username:24} {u.role}" for u in users) or "no users"


def _run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        with migrated_engine(config) as engine:
            who = {"by": args.by or getpass.getuser(), "via": "cli", "now": SystemClock().now()}
            print(args.action(UserStore(engine), args, **who))
        return 0
    except UserError as exc:
        print(f"relay-center user: {exc}", file=sys.stderr)
        return 1
