"""The legacy backend's schema, as its README describes it: what the in-place upgrade
starts from, in ``store/test_schema.py`` and the dashboard's end-to-end tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from support import Database

# The schema the legacy backend created, as its README describes it (MySQL).
LEGACY_DDL = [
    """CREATE TABLE repos (Id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name varchar(50) UNIQUE) DEFAULT CHARSET=latin1""",
    """CREATE TABLE branches (Id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name varchar(50) NOT NULL UNIQUE, author varchar(50), repo varchar(50) NOT NULL)
        DEFAULT CHARSET=latin1""",
    """CREATE TABLE commits (Id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        hash varchar(100) NOT NULL UNIQUE, author varchar(50), message text, time datetime,
        repo varchar(50) NOT NULL) DEFAULT CHARSET=latin1""",
    """CREATE TABLE workflows (Id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name varchar(50) NOT NULL UNIQUE, url varchar(100) NOT NULL,
        repo varchar(50) NOT NULL) DEFAULT CHARSET=latin1""",
    """CREATE TABLE workflowruns (Id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        gitid bigint NOT NULL UNIQUE, author varchar(50), runtime float,
        createtime datetime, starttime datetime, endtime datetime, queuetime bigint DEFAULT 0,
        status varchar(50), conclusion varchar(50), url varchar(100),
        branchname varchar(100), commithash varchar(100), workflowname varchar(50),
        repo varchar(50) NOT NULL, os varchar(100)) DEFAULT CHARSET=latin1""",
]
# workflowruns' legacy columns after Id, which the dashboard reads by name.
LEGACY_RUN_COLUMNS = (
    "gitid",
    "author",
    "runtime",
    "createtime",
    "starttime",
    "endtime",
    "queuetime",
    "status",
    "conclusion",
    "url",
    "branchname",
    "commithash",
    "workflowname",
    "repo",
    "os",
)

T0 = datetime(2023, 5, 1, 12, 0, 0)
LEGACY_ROWS = {
    "repos": [(1, "iree-org/iree"), (2, "nod-ai/SHARK")],
    "branches": [(1, "main", "alice", "iree-org/iree"), (2, "shark-main", "bob", "nod-ai/SHARK")],
    "commits": [
        (1, "a" * 40, "Alice", "old commit", T0, "iree-org/iree"),
        (2, "b" * 40, "Bob", "shark commit", T0, "nod-ai/SHARK"),
    ],
    "workflows": [
        (1, "CI", "https://github.com/iree-org/iree/actions/workflows/ci.yml", "iree-org/iree"),
        (
            2,
            "Retired",
            "https://github.com/iree-org/iree/actions/workflows/old.yml",
            "iree-org/iree",
        ),
        (3, "Nightly", "https://github.com/nod-ai/SHARK/actions/workflows/n.yml", "nod-ai/SHARK"),
    ],
    # runtime in the legacy unit (milliseconds / 100): 120 s was stored as 1200.
    "workflowruns": [
        (
            1,
            111,
            "alice",
            1200.0,
            T0,
            T0,
            T0 + timedelta(minutes=2),
            0,
            "completed",
            "success",
            "https://github.com/iree-org/iree/actions/runs/111",
            "main",
            "a" * 40,
            "CI",
            "iree-org/iree",
            "linux",
        ),
        (
            2,
            222,
            "bob",
            600.0,
            T0,
            T0,
            T0 + timedelta(minutes=1),
            0,
            "completed",
            "failure",
            "https://github.com/nod-ai/SHARK/actions/runs/222",
            "shark-main",
            "b" * 40,
            "Nightly",
            "nod-ai/SHARK",
            "windows",
        ),
    ],
}


def create_legacy(database: Database) -> None:
    with database.open() as db:
        for ddl in LEGACY_DDL:
            db.execute_sql(ddl)
        for table, rows in LEGACY_ROWS.items():
            marks = ", ".join(["%s"] * len(rows[0]))
            for row in rows:
                db.execute_sql(f"INSERT INTO {table} VALUES ({marks})", row)
