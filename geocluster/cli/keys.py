"""CLI: ``keys create``, ``keys list``, ``keys revoke`` (API keys of a workspace)."""

from __future__ import annotations

import argparse
import sys

from geocluster.cli._common import add_workspace_arg, open_ws, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``keys`` with its ``create``, ``list`` and ``revoke`` subcommands."""
    p = sub.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys of the workspace's server. A key is printed once, at creation; "
        "only its hash is stored. With no key, `serve` runs open on 127.0.0.1 only.",
    )
    keys = p.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.required = True

    c = keys.add_parser("create", help="create a key and print it (once)")
    c.add_argument("--role", required=True, choices=("viewer", "editor", "admin"))
    c.add_argument("--name", help="who holds the key (a label)")
    add_workspace_arg(c)
    c.add_argument("--json", action="store_true", help="print {id, key, role, name} as JSON")
    c.set_defaults(handler=_create)

    ls = keys.add_parser("list", help="list keys (ids, names, roles; never the keys)")
    add_workspace_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_list)

    r = keys.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id", metavar="KEY_ID", help="the id shown by `keys list` (8 hex digits)")
    add_workspace_arg(r)
    r.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace) -> int:
    from geocluster.auth import create_key

    ws = open_ws(args)
    key_id, key = create_key(ws.catalog, args.role, args.name)
    if args.json:
        print_json({"id": key_id, "key": key, "role": args.role, "name": args.name})
    else:
        print(key)
        print(
            f"key {key_id} ({args.role}) created; it is shown only now, store it safely",
            file=sys.stderr,
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from geocluster.auth import list_keys

    rows = list_keys(open_ws(args).catalog)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no keys (the server runs in open single-user mode on 127.0.0.1)")
        return 0
    for row in rows:
        state = f"revoked {row['revoked']}" if row["revoked"] else "active"
        print(f"{row['id']}  {row['role']:<6}  {state:<7}  {row['created']}  {row['name'] or ''}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from geocluster.auth import revoke_key

    revoke_key(open_ws(args).catalog, args.key_id)
    print(f"key {args.key_id} revoked", file=sys.stderr)
    return 0
