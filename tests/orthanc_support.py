"""A real DICOMweb server for the tests (issue 14): Debian's Orthanc with its DICOMweb plugin, started on free
loopback ports with a throwaway storage folder (installed by scripts/system-deps.sh).  Missing: skipped locally,
a failure under CI (tests/store_support.py's policy)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.store_support import missing, setup_failed

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGINS = (Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"), *sorted(Path("/usr/lib/orthanc").glob(
    "libOrthancDicomWeb.so*")))
DICOMWEB_PLUGIN = next((p for p in PLUGINS if p.exists()), PLUGINS[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The DICOMweb root URL of a running Orthanc (``http://127.0.0.1:PORT/dicom-web``)."""
    if not ORTHANC.exists() or not DICOMWEB_PLUGIN.exists():
        missing("Orthanc with its DICOMweb plugin (Debian packages orthanc, orthanc-dicomweb)",
                f"{ORTHANC} or {DICOMWEB_PLUGIN} not found")
    where = tmp_path_factory.mktemp("orthanc")
    http, dicom = _free_port(), _free_port()
    config = {"Name": "spinemets-tests", "StorageDirectory": str(where / "db"), "IndexDirectory": str(where / "db"),
              "HttpPort": http, "DicomPort": dicom, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "HttpServerEnabled": True, "DicomServerEnabled": False, "Plugins": [str(DICOMWEB_PLUGIN)],
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False}}
    (where / "orthanc.json").write_text(json.dumps(config))
    log = open(where / "orthanc.log", "w")
    proc = subprocess.Popen([str(ORTHANC), str(where / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                setup_failed("Orthanc", f"exited with {proc.returncode}: {(where / 'orthanc.log').read_text()[-800:]}")
            try:
                if httpx.get(f"{base}/dicom-web/studies", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                setup_failed("Orthanc", "did not answer on its DICOMweb root within 30 s")
            time.sleep(0.2)
        yield f"{base}/dicom-web"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def upload(root: str, folder: Path) -> None:
    """Store a folder's files on the server through its Orthanc REST API (the test's own set-up)."""
    base = root.rsplit("/dicom-web", 1)[0]
    for f in sorted(folder.iterdir()):
        r = httpx.post(f"{base}/instances", content=f.read_bytes(), timeout=30)
        r.raise_for_status()
