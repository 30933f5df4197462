"""A throwaway PostgreSQL cluster for tests and benchmarks (Debian's ``postgresql`` package).

``Cluster.start()`` runs ``initdb`` into a new temporary folder and ``pg_ctl start`` on a free loopback
port; ``stop()`` stops it (``-m immediate``) and deletes the folder.  As root (CI), the server runs as
the ``postgres`` system user through ``runuser``, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


class Unavailable(RuntimeError):
    """PostgreSQL is not installed or could not be started; the message says why."""


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    if exe:
        return Path(exe).resolve().parent
    raise Unavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                      "run scripts/system-deps.sh as root (apt-get install postgresql)")


class Cluster:
    def __init__(self, fsync: bool = False) -> None:
        self.fsync = fsync
        self.dir: Path | None = None
        self.port = 0
        self._as: list[str] = []

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout)

    def start(self) -> Cluster:
        from spinemets.api.devserver import free_port

        bins = bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="spinemets-pg-"))
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                raise Unavailable("running as root but runuser is missing (PostgreSQL refuses to run as root)")
            try:
                shutil.chown(self.dir, user="postgres")
            except (LookupError, OSError) as exc:
                raise Unavailable(f"no postgres system user to run the server as: {exc}") from None
            self._as = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        r = self._run(str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync", "--locale=C.UTF-8")
        if r.returncode != 0:
            r = self._run(str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            self.stop()
            raise Unavailable(f"initdb failed: {(r.stderr or r.stdout).strip()[-500:]}")
        self.port = free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                f"-c fsync={'on' if self.fsync else 'off'} -c synchronous_commit={'on' if self.fsync else 'off'} "
                f"-c full_page_writes={'on' if self.fsync else 'off'}")
        r = self._run(str(bins / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                      "-o", opts, "start", timeout=90)
        if r.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-800:] if (self.dir / "server.log").exists() else ""
            self.stop()
            raise Unavailable(f"pg_ctl start failed: {(r.stderr or r.stdout).strip()[-300:]} {log}")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(str(bindir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60)
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
