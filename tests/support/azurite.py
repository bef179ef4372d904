"""Azurite's table service, started for the test session from node_modules."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE_TABLE = ROOT / "node_modules" / ".bin" / "azurite-table"

#: Azurite's documented development account (public, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "azurite.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(AZURITE_TABLE),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                self._fail()
            try:
                wait_for_port(self.port, timeout=0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    self._fail()

    def _fail(self) -> None:
        self.stop()
        raise RuntimeError(f"Azurite did not start; its log: {self.log_path.read_text()[-2000:]}")

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
