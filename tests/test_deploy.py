"""The systemd unit in deploy/: systemd accepts it, and the command it runs starts a webhook worker
on the instance's port that stops cleanly on systemd's SIGTERM."""

from __future__ import annotations

import asyncio
import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.botapi_standin import BotApiStandin

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "saathi@.service"
INSTALLED = "/opt/export-saathi"  # where the unit expects the project; the tests put this checkout there
SAATHI = Path(sys.executable).parent / "saathi"  # the command the Makefile installs into the venv running the tests


def unit_here(port: int) -> str:
    """The unit as it would be installed, pointing at this checkout and run as this user."""
    text = UNIT.read_text(encoding="utf-8").replace(f"{INSTALLED}/.venv/bin/saathi", str(SAATHI)).replace(INSTALLED, str(ROOT))
    return text.replace("User=saathi", f"User={getpass.getuser()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_worker_unit(tmp_path: Path):
    SAATHI.resolve(strict=True)  # the command the unit runs exists here
    (tmp_path / "saathi@.service").write_text(unit_here(8441), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "./saathi@8441.service"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "saathi@" not in done.stderr, done.stderr  # no error, no ignored line


async def test_the_units_command_serves_the_instances_port_and_stops_on_sigterm(tmp_path: Path):
    """``saathi@PORT``'s ExecStart, as systemd runs it (settings from the environment file, the port
    from the instance): the Telegram webhook answers on PORT, and SIGTERM ends it with exit code 0."""
    port = free_port()
    lines = [line for line in unit_here(port).splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    argv = shlex.split(lines[0].removeprefix("ExecStart=").replace("%i", str(port)))
    async with BotApiStandin() as api:
        env_file = {  # what /opt/export-saathi/.env holds; WEBHOOK_PORT there would be overridden
            "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url,
            "WEBHOOK_URL": "https://bot.example.in/telegram", "WEBHOOK_SECRET": "deploy-test-secret",
            "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": "1", "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "LOG_LEVEL": "WARNING",
        }
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env_file}
        proc = await asyncio.create_subprocess_exec(*argv, cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE)
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/health") as response:
                            if response.status == 200 and await response.text() == "ok":
                                break
                    except aiohttp.ClientError:
                        pass
                    assert proc.returncode is None, (await proc.stderr.read()).decode()
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"nothing answered on port {port}")
            assert api.webhook_url == "https://bot.example.in/telegram"  # registered with Telegram
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)  # TimeoutStopSec
            errors = (await proc.stderr.read()).decode()
            assert code == 0 and "Traceback" not in errors, errors
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

