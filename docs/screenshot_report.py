"""Take screenshots of a Snakemake report in headless Chromium (for the README's images).

    python docs/screenshot_report.py report.html docs/report.png --category digits/baseline \\
        --subcategory "learning curves" \\
        --result results/digits/baseline/cnn/plots/learning_curves.png

The report is a single-page app; a copy of it gets a script that opens the requested view, and
Chromium (Debian package `chromium`) takes the screenshot. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path


def view_script(
    category: str | None, subcategory: str | None, result: str | None, info: bool = False
) -> str:
    """JavaScript that opens a category (and subcategory) in the menu and shows a result;
    with `info`, the menu shows the result's caption instead."""
    view: dict[str, str] = {}
    if category:
        view = {"navbarMode": "subcategory" if subcategory else "category", "category": category}
        if subcategory:
            view["subcategory"] = subcategory
    show = ""
    if result:  # one setView call: React batches state updates, a second call would undo the first
        show = (
            f"var r = {json.dumps(result)};"
            "view.content = results[r].mime_type.startsWith('image/') ? 'img' : 'html';"
            "view.contentPath = results[r].data_uri; view.resultPath = r;"
        )
        if info:
            show += "view.navbarMode = 'resultinfo';"
    return (
        f"<script>setTimeout(function() {{ var view = {json.dumps(view)}; {show} "
        "app.setView(view); }, 300);</script>"
    )


def screenshot(
    report: Path,
    out: Path,
    *,
    category: str | None = None,
    subcategory: str | None = None,
    result: str | None = None,
    info: bool = False,
    size: str = "1400,900",
) -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        text = report.read_text(encoding="utf-8")
        end = text.rfind("</body>")  # the page's own; embedded scripts hold the string too
        script = view_script(category, subcategory, result, info)
        page.write_text(text[:end] + script + text[end:], encoding="utf-8")
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={tmp}/profile",
                "--virtual-time-budget=3000",
                f"--screenshot={out.resolve()}",
                f"--window-size={size}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--category")
    parser.add_argument("--subcategory")
    parser.add_argument("--result", help="the result's path, as the report lists it")
    parser.add_argument("--info", action="store_true", help="show the result's caption")
    parser.add_argument("--size", default="1400,900")
    args = parser.parse_args()
    screenshot(
        args.report,
        args.out,
        category=args.category,
        subcategory=args.subcategory,
        result=args.result,
        info=args.info,
        size=args.size,
    )


if __name__ == "__main__":
    main()
