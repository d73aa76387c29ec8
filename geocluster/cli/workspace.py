"""CLI: ``raster``, ``runs``, ``export`` and ``store migrate`` (the workspace as a whole)."""

from __future__ import annotations

import argparse
import sys

from geocluster.cli._common import add_workspace_arg, open_ws, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``raster`` and ``runs``."""
    p = sub.add_parser("raster", help="register, list or delete rasters (GeoTIFF layers)")
    rsub = p.add_subparsers(dest="raster_command", metavar="{add,list,delete}")
    rsub.required = True
    a = rsub.add_parser("add", help="validate a raster, store it as a COG and register it")
    a.add_argument("path", help="a GeoTIFF (or any GDAL raster file)")
    a.add_argument("--name", required=True, help="name; the id is its slug")
    add_workspace_arg(a)
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=_raster_add)
    ls = rsub.add_parser("list", help="list the registered rasters")
    add_workspace_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_raster_list)
    d = rsub.add_parser("delete", help="delete a registered raster (as DELETE /rasters/{id})")
    d.add_argument("raster_id", metavar="RASTER_ID")
    add_workspace_arg(d)
    d.set_defaults(handler=_raster_delete)

    p = sub.add_parser("runs", help="list or delete analysis runs")
    rsub = p.add_subparsers(dest="runs_command", metavar="{list,delete}")
    rsub.required = True
    ls = rsub.add_parser("list", help="the runs, oldest first (as GET /runs)")
    ls.add_argument("--kind", help="only runs of this kind, e.g. clusters")
    add_workspace_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_runs_list)
    d = rsub.add_parser("delete", help="delete a run and its layers (as DELETE /runs/{id})")
    d.add_argument("run_id", metavar="RUN_ID")
    add_workspace_arg(d)
    d.set_defaults(handler=_run_delete)

    p = sub.add_parser(
        "export",
        help="write datasets and runs to one GeoPackage (QGIS) or a folder of GeoParquet files",
    )
    p.add_argument("out", metavar="OUT", help="a .gpkg file, or a folder for --format parquet")
    p.add_argument("--format", choices=("gpkg", "parquet"), default="gpkg")
    p.add_argument("--datasets", nargs="+", metavar="ID", help="id or id@version (default: all)")
    p.add_argument("--runs", nargs="+", metavar="RUN_ID", help="runs to export, every layer")
    add_workspace_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_export)

    p = sub.add_parser("groups", help="your own sector groups, usable as --sector-group")
    gsub = p.add_subparsers(dest="groups_command", metavar="{add,list}")
    gsub.required = True
    a = gsub.add_parser("add", help="store the groups of a YAML or JSON file in the workspace")
    a.add_argument("file", metavar="FILE", help="{name: {title, codes[, scheme]}} (.yaml/.json)")
    add_workspace_arg(a)
    a.set_defaults(handler=_groups_add)
    ls = gsub.add_parser("list", help="the workspace's sector groups")
    add_workspace_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_groups_list)

    p = sub.add_parser("store", help="move the workspace between stores")
    ssub = p.add_subparsers(dest="store_command", metavar="{migrate}")
    ssub.required = True
    m = ssub.add_parser(
        "migrate",
        help="copy every dataset version, run, raster and key into another store "
        "(a postgresql:// URL or a workspace folder); already copied ones are skipped",
    )
    m.add_argument("--to", required=True, metavar="URL|DIR", help="the target store")
    add_workspace_arg(m)
    m.add_argument("--json", action="store_true")
    m.set_defaults(handler=_store_migrate)


def _raster_add(args: argparse.Namespace) -> int:
    info = open_ws(args).add_raster(args.path, name=args.name)
    if args.json:
        print_json(info.to_dict())
    else:
        sys.stdout.write(
            f"raster {info.id}: {info.width} x {info.height} px, {info.count} band(s), "
            f"{info.dtype}, {info.crs}\n"
        )
    return 0


def _raster_list(args: argparse.Namespace) -> int:
    rasters = open_ws(args).rasters()
    if args.json:
        print_json([r.to_dict() for r in rasters])
        return 0
    for r in rasters:
        sys.stdout.write(f"{r.id}\t{r.name}\t{r.kind}\t{r.width}x{r.height}\t{r.crs}\n")
    return 0


def _raster_delete(args: argparse.Namespace) -> int:
    open_ws(args).delete_raster(args.raster_id)
    sys.stdout.write(f"deleted raster {args.raster_id}\n")
    return 0


def _runs_list(args: argparse.Namespace) -> int:
    runs = open_ws(args).runs(args.kind)
    if args.json:
        print_json([r.to_dict() for r in runs])
        return 0
    for r in runs:
        sys.stdout.write(f"{r.id}\t{r.kind}\t{r.created}\t{', '.join(r.inputs)}\n")
    return 0


def _run_delete(args: argparse.Namespace) -> int:
    open_ws(args).delete_run(args.run_id)
    sys.stdout.write(f"deleted run {args.run_id}\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from geocluster.store.export import export

    ws = open_ws(args)
    layers = export(ws, args.out, fmt=args.format, datasets=args.datasets, runs=args.runs)
    if args.json:
        print_json(
            [{"layer": x.name, "rows": x.rows, "description": x.description} for x in layers]
        )
        return 0
    print(f"exported {len(layers)} layer(s) to {args.out} ({args.format}):")
    for x in layers:
        print(f"  {x.name:40} {x.rows:>10,} rows  {x.description}")
    return 0


def _store_migrate(args: argparse.Namespace) -> int:
    from geocluster.store.migrate_pg import copy_workspace
    from geocluster.workspace import Workspace

    src = open_ws(args)
    target = str(args.to)
    if target.startswith(("postgresql://", "postgres://")):
        dst = Workspace(src.path, store_url=target)
    else:
        dst = Workspace(target)
    with progress_bar(not args.json) as update:
        counts = copy_workspace(src, dst, progress=update)
    if args.json:
        print_json(counts)
    else:
        print(
            "copied "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f" into {dst.store.url if hasattr(dst.store, 'url') else 'the target store'}"
        )
    return 0


def _groups_add(args: argparse.Namespace) -> int:
    from geocluster.sectors.groups import load_groups_file

    ws = open_ws(args)
    names = ws.add_sector_groups(load_groups_file(args.file))
    print(f"stored {len(names)} sector group(s): {', '.join(names)} (use --sector-group NAME)")
    return 0


def _groups_list(args: argparse.Namespace) -> int:
    groups = open_ws(args).sector_groups()
    if args.json:
        print_json(groups)
        return 0
    for name, g in groups.items():
        print(f"{name:24} {g['title']}: {', '.join(g['codes'])}")
    if not groups:
        print("no sector groups of this workspace (the built-in ones: agro_food, tourism, …)")
    return 0
