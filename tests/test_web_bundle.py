"""The first load of the app (HTML shell + JS + CSS, gzipped) stays under 150 KB.

Phones on a field's mobile signal load this before they can score. The figure is measured
from the build the relay serves (what a phone downloads), and for the protocol module plus
the model and Preact on their own (what the views build on); docs/web-client.md quotes it.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

from relay.web import load_build

from .web_tools import WEB, node_path

BUDGET_BYTES = 150 * 1024


def _gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def test_first_load_is_under_budget(web_dist: Path) -> None:
    build = load_build(web_dist)
    assert build is not None
    # Everything the shell loads before the first paint: its own bytes and each /static file
    # it names (esbuild's chunks of dynamic imports load later, when a screen needs them).
    names = re.findall(r"/static/([A-Za-z0-9_.-]+)", build.shell.decode())
    assert names, "the shell names no script or stylesheet"
    files = [build.shell] + [build.assets[name].body for name in names]
    total = sum(_gz(data) for data in files)
    print(f"first load: {total} B gzipped over {len(files)} files")
    assert total < BUDGET_BYTES


def test_protocol_module_model_and_preact_size(web_dist: Path) -> None:
    probe = (
        'export * from "./src/protocol/index"; export * from "./src/model/index";'
        'export { render, h } from "preact"; export { useState, useEffect } from "preact/hooks";'
    )
    result = subprocess.run(
        [
            str(node_path()),
            "node_modules/esbuild/bin/esbuild",
            "--bundle",
            "--minify",
            "--format=esm",
            "--target=es2020",
            "--loader=ts",
            "--sourcefile=probe.ts",
            "--log-level=error",
        ],
        cwd=WEB,
        input=probe.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    size = _gz(result.stdout)
    print(f"protocol + model + preact: {len(result.stdout)} B, {size} B gzipped")
    assert size < 60 * 1024  # measured 48.2 KiB; the views and styles have the rest
