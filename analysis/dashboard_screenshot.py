"""A screenshot of optuna-dashboard's page of a study, taken with headless Chromium:

    python analysis/dashboard_screenshot.py sweeps/lora_rank/ledger.journal docs/img/optuna_dashboard.png

Starts ``optuna-dashboard`` on the ledger (a journal file or a database URL), waits until it answers, and has
``chromium --headless`` render the study's page (``--page`` picks another: ``analytics`` for the importances,
``trial-table``). Needs the ``chromium`` package (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_studies(port: int, server: subprocess.Popen, timeout: float = 120) -> list[dict]:
    """The dashboard's study list, once it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                return json.load(response)["study_summaries"]
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("optuna-dashboard did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="the ledger: sweeps/<study>/ledger.journal or a database URL")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--study", help="the study's name (default: the only one, else the first)")
    parser.add_argument("--page", default="", help="a page under the study: '' (history and curves), analytics, "
                                                   "trial-table, trial-list")
    parser.add_argument("--size", default="1600,1400", help="window size in pixels, WIDTH,HEIGHT")
    arguments = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    port = free_port()
    dashboard = shutil.which("optuna-dashboard") or str(Path(sys.executable).with_name("optuna-dashboard"))
    server = subprocess.Popen([dashboard, arguments.storage, "--port", str(port), "--host", "127.0.0.1", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        studies = wait_for_studies(port, server)
        chosen = next((s for s in studies if s["study_name"] == arguments.study), studies[0]) if studies else None
        if chosen is None:
            raise SystemExit(f"{arguments.storage}: no study")
        url = f"http://127.0.0.1:{port}/dashboard/studies/{chosen['study_id']}" + \
            (f"/{arguments.page}" if arguments.page else "")
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={arguments.size}", "--virtual-time-budget=20000",
                        f"--screenshot={arguments.out.resolve()}", url], check=True, capture_output=True,
                       timeout=180)
        print(f"{url} -> {arguments.out}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
