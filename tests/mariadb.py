"""A throwaway mariadbd, our own process on a free 127.0.0.1 port, for tests and benchmarks."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import port_for
import pymysql
from mirakuru import TCPExecutor

from support import Database

MARIADBD = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
POLLER_USER, POLLER_PASSWORD = "poller", "db-Secret-Passw0rd-xyz"


def mariadb_installed() -> bool:
    return bool(MARIADBD and INSTALL_DB)


@dataclass
class MariaDB:
    executor: TCPExecutor
    port: int

    def root(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            autocommit=True,
        )

    def create_database(self, name: str) -> Database:
        with self.root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            # The server default stays latin1, as MariaDB ships: the poller must cope.
            cursor.execute(f"CREATE DATABASE `{name}`")
        url = f"mysql://{POLLER_USER}@127.0.0.1:{self.port}/{name}"
        return Database(url, POLLER_PASSWORD, kind="mariadb")

    def restart(self) -> None:
        self.executor.stop()
        self.executor.start()


def start_mariadb(
    base: Path,
    *,
    durable: bool = False,
    buffer_pool: str = "64M",
    counting: bool = False,
    skip_name_resolve: bool = False,
) -> MariaDB:
    """Initialise a datadir under ``base`` and start mariadbd on it, as root may.

    Tests trade durability for speed; ``durable`` keeps MariaDB's default of flushing the
    log at every commit, as production servers do, for benchmarks. ``counting`` turns on
    the performance schema, which counts the rows read per table (``query_cost.py``).
    ``skip_name_resolve``: as many production servers run, matching accounts by address.
    """
    assert MARIADBD and INSTALL_DB, "mariadbd is not installed"
    datadir = base / "data"
    installed = subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
    )
    # Its own words, if it fails: a bare exit status says nothing in a CI log.
    assert installed.returncode == 0, f"{INSTALL_DB} failed: {installed.stdout}{installed.stderr}"
    port = port_for.select_random()
    command = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={base / 'mysqld.sock'}",
        "--user=root",
        f"--pid-file={base / 'mysqld.pid'}",
        f"--log-error={base / 'error.log'}",
        f"--innodb-buffer-pool-size={buffer_pool}",
        "--skip-log-bin",
        "--innodb-flush-log-at-trx-commit=2",
        f"--performance-schema={'ON' if counting else 'OFF'}",
        *(["--skip-name-resolve"] if skip_name_resolve else []),
    ]
    executor = TCPExecutor(command, host="127.0.0.1", port=port, timeout=60)
    executor.start()
    server = MariaDB(executor, port)
    with server.root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{POLLER_USER}'@'%' IDENTIFIED BY '{POLLER_PASSWORD}'")
        cursor.execute(f"GRANT ALL ON *.* TO '{POLLER_USER}'@'%'")
    return server
