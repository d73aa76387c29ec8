"""A throw-away PostgreSQL + PostGIS cluster for the tests (session fixture).

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created
and started as the ``postgres`` system user (``runuser``), in a temporary directory
owned by it; the unix socket lives in that directory too and the server listens on a
free loopback port only. The cluster is stopped and removed when the session ends.

Use it from a test module: ``from tests.pgserver import postgres_url``, or wrap
:func:`running_cluster` in a local session fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("GEOCLUSTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL_HINT = "PostgreSQL/PostGIS missing: apt-get install postgresql-15 postgresql-15-postgis-3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    """Run ``args`` as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(repr, args))]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_as_postgres(args), check=True, capture_output=True, text=True, **kw)


class PgCluster:
    """A started cluster: ``url`` of its database, ``admin_url`` of the superuser."""

    def __init__(self, bin_dir: Path = PG_BIN) -> None:
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (Path(bin_dir) / tool).is_file():
                pytest.fail(INSTALL_HINT, pytrace=False)
        self.bin = Path(bin_dir)
        if not any(Path("/usr/share/postgresql/15/extension").glob("postgis.control")):
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.dir = Path(tempfile.mkdtemp(prefix="geocluster-pg-"))
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = _free_port()
        _run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
            "-c shared_buffers=64MB"
        )
        _run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-l",
                str(self.dir / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/geocluster_test"
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as con:
            con.execute("CREATE DATABASE geocluster_test")
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute("CREATE EXTENSION postgis")

    def stop(self) -> None:
        try:
            _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        except subprocess.CalledProcessError:
            time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)


def running_cluster():
    """Start a cluster, yield it, stop and remove it (the body of a session fixture)."""
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """A running PostgreSQL 15 + PostGIS cluster for the whole test session."""
    yield from running_cluster()


@pytest.fixture(scope="session")
def postgres_url(pg_cluster) -> str:
    """``postgresql://`` URL of a database with PostGIS in the throw-away cluster."""
    return pg_cluster.url
