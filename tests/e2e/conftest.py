"""End-to-end fixtures: a real `vecstash serve` process per test module family.

The binary comes from $VECSTASH_BIN (ctest passes the built target through tests/e2e/run.sh).
Each server gets its own data directory, listens on 127.0.0.1 with an ephemeral port and reports
the port through --port-file. Teardown sends SIGTERM and requires a clean exit (code 0) within 30 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 30.0

API_KEY = "e2e-admin-key-1f3a"
READ_ONLY_API_KEY = "e2e-read-only-key-7c2d"


def pytest_configure(config: pytest.Config) -> None:
    # The keyed tests talk plain http on purpose (loopback); the client warns about it every time.
    config.addinivalue_line(
        "filterwarnings", "ignore:Api key is used with an insecure connection:UserWarning"
    )


def _binary() -> Path:
    value = os.environ.get("VECSTASH_BIN")
    if value:
        path = Path(value)
    else:
        path = REPO_ROOT / "build" / "tools" / "vecstash"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.skip(f"vecstash binary not found or not executable: {path} (set VECSTASH_BIN)")
    return path


@dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen
    api_key: str | None = None
    read_only_api_key: str | None = None

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])


def _start_server(workdir: Path, api_key: str | None = None, read_only_api_key: str | None = None) -> Server:
    binary = _binary()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)  # a restart on the same directory must not read the old port
    log_path = workdir / "server.log"
    cmd = [
        str(binary), "serve",
        "--data-dir", str(data_dir),
        "--host", "127.0.0.1",
        "--port", "0",
        "--port-file", str(port_file),
    ]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    if read_only_api_key is not None:
        cmd += ["--read-only-api-key", read_only_api_key]

    log = open(log_path, "ab")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    port = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log_path.read_text(errors="replace")
            pytest.fail(f"vecstash serve exited early with code {process.returncode}: {cmd}\n{text[-4000:]}")
        try:
            text = port_file.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text.isdigit() and 0 < int(text) < 65536:
            port = int(text)
            break
        time.sleep(0.05)
    if port is None:
        process.kill()
        process.wait(timeout=10)
        text = log_path.read_text(errors="replace")
        pytest.fail(f"vecstash serve wrote no port file within {STARTUP_TIMEOUT_S:.0f} s: {cmd}\n{text[-4000:]}")

    return Server(
        url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
        api_key=api_key,
        read_only_api_key=read_only_api_key,
    )


def _stop_server(server: Server) -> None:
    process = server.process
    if process.poll() is not None:
        pytest.fail(
            f"vecstash serve died during the tests with code {process.returncode}\n{server.log_tail()}"
        )
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"vecstash serve did not exit within {SHUTDOWN_TIMEOUT_S:.0f} s of SIGTERM\n{server.log_tail()}")
    assert code == 0, f"vecstash serve exited with code {code} after SIGTERM\n{server.log_tail()}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A vecstash server without authentication."""
    srv = _start_server(tmp_path_factory.mktemp("vecstash-open"))
    yield srv
    _stop_server(srv)


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory):
    """A vecstash server with an admin key and a read-only key."""
    srv = _start_server(
        tmp_path_factory.mktemp("vecstash-keyed"), api_key=API_KEY, read_only_api_key=READ_ONLY_API_KEY
    )
    yield srv
    _stop_server(srv)


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    return server.url
