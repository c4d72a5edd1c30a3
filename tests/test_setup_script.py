"""scripts/setup.sh installs only what is missing: no sudo apt-get when chromium and the font are there."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _executable(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the script in a tree whose .venv is already installed (its stamp is there)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    _executable(tmp_path / ".venv" / "bin" / "python", "exit 0\n")
    both = (tmp_path / "requirements.txt").read_bytes() + (tmp_path / "requirements-dev.txt").read_bytes()
    (tmp_path / ".venv" / f".installed-{hashlib.sha256(both).hexdigest()[:16]}").touch()
    return tmp_path


def _run(repo: Path, fonts: list[str], chromium_present: bool) -> list[str]:
    bin_dir = repo / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    calls = repo / "calls.log"
    # Many fonts, the wanted one first: grep -q stops reading early, as it does on a real machine.
    listing = "\n".join(fonts * 2000)
    (repo / "fonts.txt").write_text(listing + "\n", encoding="utf-8")
    _executable(bin_dir / "fc-list", f'cat "{repo / "fonts.txt"}"\n')
    for tool in ("sudo", "apt-get"):
        _executable(bin_dir / tool, f'echo "{tool} $*" >> "{calls}"\n')
    chromium = repo / "chromium"
    if chromium_present:
        _executable(chromium, "exit 0\n")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PLAYGROUND_CHROMIUM": str(chromium),
    }
    subprocess.run(["bash", "scripts/setup.sh", "--test"], cwd=repo, env=env, check=True, timeout=60)
    return calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []


def test_nothing_missing_means_no_apt_get(repo: Path) -> None:
    fonts = [
        "/usr/share/fonts/wqy-zenhei.ttc: WenQuanYi Zen Hei",
        "/usr/share/fonts/DejaVuSans.ttf: DejaVu Sans",
    ]
    for _ in range(5):
        assert _run(repo, fonts, chromium_present=True) == []


def test_missing_chromium_is_installed(repo: Path) -> None:
    calls = _run(repo, ["/usr/share/fonts/wqy-zenhei.ttc: WenQuanYi Zen Hei"], chromium_present=False)
    assert any("install" in c and "chromium" in c for c in calls)
