"""`netwall report` on a real small `netwall compare`, opened in headless Chromium as a user
would: the page loads without console errors or failed loads, its findings name the design
the rows show fastest, its tables fit the page and read in units, and it prints to PDF.

Set NETWALL_SCREENSHOTS=DIR to keep the screenshots (docs/report.png and
docs/report-print.png are made this way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import chromium
from tests.conftest import netwall

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(chromium.binary() is None,
                                 reason="needs chromium (./netwall.sh test installs it)")]

DESIGNS = """\
name: browser
description: three scale-up technologies on four GPUs, one of them cabled too far
iters: 1
warmup: 0
probe: false
layout: gpus=2
workloads:
  - {name: ar, collective: allreduce, sizes: [256K]}
designs:
  - {name: nvlink-2-domains, scale_up: nvlink5, domains: 2, domain_gpus: 2}
  - {name: nvlink-across-racks, scale_up: nvlink5, domains: 1, domain_gpus: 4}
  - {name: microled-bundle, scale_up: {profile: wide-and-slow-800g, cables: 9}, domains: 1,
     domain_gpus: 4}
"""


def test_report_of_a_real_comparison_in_chromium(tmp_path):
    spec = tmp_path / "browser.yaml"
    spec.write_text(DESIGNS)
    db, out = tmp_path / "browser.sqlite", tmp_path / "report"
    done = netwall("compare", str(spec), "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    timed = [r for r in rows if r["feasible"]]
    fastest = min(timed, key=lambda r: r["time_s"])["design"]
    unfit = [r["design"] for r in rows if not r["feasible"]]
    assert len(timed) == 2 and unfit == ["nvlink-across-racks"]

    table = netwall("compare", str(spec), "--db", str(db))  # from the store: nothing built
    assert table.returncode == 0, table.stderr
    verdict = table.stdout.split("# verdict:")[1]
    assert f"{fastest} is fastest" in verdict and "nvlink-across-racks does not fit" in verdict

    made = netwall("report", "--db", str(db), "--out", str(out))
    assert made.returncode == 0, made.stderr
    page = out / "index.html"
    with chromium.Browser(tmp_path / "profile") as browser:
        browser.load(page.as_uri())
        assert browser.problems == []
        said = browser.evaluate("document.querySelector('.findings').innerText")
        assert said.splitlines()[0].startswith(f"On ar at 256 KiB, {fastest} is fastest")
        assert "nvlink-across-racks does not fit: " in said
        assert browser.evaluate(  # every figure drawn, none broken
            "[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert browser.evaluate("document.images.length") >= 1
        assert browser.evaluate(  # nothing runs off the right of the page
            "[...document.querySelectorAll('table')].every(t => "
            "t.getBoundingClientRect().right <= document.documentElement.clientWidth)")
        cells = browser.evaluate(
            "[...document.querySelectorAll('td, th')].map(c => c.innerText)")
        assert not {"None", "True", "False", "time_s", "watts_per_gpu"} & set(cells)
        assert not [c for c in cells if "e-0" in c]
        headings = browser.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
        assert headings == ["Findings", "Figures", "Designs compared"]  # no empty section
        shot = browser.screenshot(tmp_path / "report.png", height=1400)
        pdf = browser.pdf(tmp_path / "report.pdf")
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    keep = os.environ.get("NETWALL_SCREENSHOTS")
    printed = None
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(tmp_path / "report-print")], check=True)
        printed = tmp_path / "report-print.png"
        assert printed.stat().st_size > 5_000
    if keep:
        for made_file in (shot, printed):
            if made_file is not None:
                shutil.copy(made_file, Path(keep) / made_file.name)
