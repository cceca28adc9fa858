"""Screenshots of arner's HTML views in headless Chromium: the page of `arner serve`, `arner predict --format html`
and the `errors.html` of an evaluation.

    python scripts/screenshot_html.py --model runs/tiny --out reports/html

Starts `arner serve --model MODEL` on a free loopback port and shoots `/?text=...` (the page fills the
box and runs at once, so no click is needed); runs `arner predict --format html` on a few sentences
written for this script (not from the annotated articles); scores held-out predictions with
`arner eval` (those of the memorization baseline, `arner cv --systems memorization`: seconds, no
model) and shoots its `errors.html` at the top and at the type errors. Writes serve.png,
predict.png, errors.png and errors-type.png into OUT. Needs `chromium` on PATH (Debian:
`apt-get install chromium`) and the `arner` package installed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

SENTENCE = "التقى بوتين وويتكوف في موسكو يوم الجمعة، وقال لافروف إن روسيا مستعدة للحوار مع واشنطن."
NEWS = (
    "أعلن المتحدث باسم الكرملين دميتري بيسكوف يوم الاثنين أن الرئيس الروسي فلاديمير بوتين سيستقبل المبعوث "
    "الأمريكي ستيف ويتكوف في موسكو الأسبوع المقبل.\n"
    "وقال وزير الخارجية الأمريكي ماركو روبيو في واشنطن إن المحادثات مع روسيا وأوكرانيا ستستمر في الرياض.\n"
    "وذكرت وكالة تاس أن الجانبين بحثا ملف الطاقة في 12 مارس 2025."
)


def arner(*args: str, **kw) -> subprocess.CompletedProcess:
    """The `arner` command of this interpreter's environment; stops the script on failure."""
    return subprocess.run([sys.executable, "-m", "arner.cli", *args], check=True, **kw)


def shoot(browser: str, url: str, png: Path, size: str, profile: Path) -> None:
    """One screenshot; virtual time lets the page's fetches finish first."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}"]
    command += [
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=10000",
        f"--window-size={size}",
        f"--screenshot={png}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    shrink(png)
    print(f"wrote {png} ({png.stat().st_size // 1024} KiB)")


def shrink(png: Path) -> None:
    """128 colours are plenty for text on flat backgrounds and make the committed PNGs about a third of the size
    (Pillow comes with matplotlib)."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def shoot_at(browser: str, page: Path, anchor: str, png: Path, size: str, profile: Path) -> None:
    """A screenshot of `page` scrolled to `#anchor`: headless Chromium shoots a blank page for a URL with a
    fragment, but a frame scrolls to its fragment, so the page is shown in a frame as large as the window."""
    width, height = size.split(",")
    frame = page.parent / f".frame-{anchor}.html"
    frame.write_text(
        f'<!DOCTYPE html><body style="margin:0"><iframe src="{page.name}#{anchor}" '
        f'style="width:{width}px;height:{height}px;border:0;display:block"></iframe></body>',
        encoding="utf-8",
    )
    shoot(browser, frame.as_uri(), png, size, profile)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: arner serve exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"error: arner serve did not answer /healthz within {timeout_s:.0f} s")


def serve_page(browser: str, model: Path, out: Path, work: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "arner.cli", "serve", "--model", str(model), "--port", str(port), "--log-level", "warning"]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        shoot(browser, f"{url}/?text={urllib.parse.quote(SENTENCE)}", out / "serve.png", "1000,620", work / "profile")
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("runs/tiny"), help="model folder (default runs/tiny, from scripts/quickstart.sh)"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/html"))
    args = parser.parse_args()
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        raise SystemExit("error: no chromium on PATH (Debian: apt-get install chromium)")
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"error: no model in {args.model}: arner train --config configs/tiny.yaml --output {args.model}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        serve_page(browser, args.model, args.out, work)
        (work / "news.txt").write_text(NEWS, encoding="utf-8")
        arner("predict", "--model", str(args.model), str(work / "news.txt"), "--format", "html", "--out", str(work / "predict.html"))
        shoot(browser, (work / "predict.html").as_uri(), args.out / "predict.png", "1000,560", work / "profile")
        arner("cv", "--systems", "memorization", "--out", str(work / "cv"), "--resamples", "100", stdout=subprocess.DEVNULL)
        pooled = work / "cv" / "memorization" / "predictions.jsonl"  # the five held-out articles
        arner("eval", "--pred", str(pooled), "--out", str(work / "eval"), "--resamples", "100")
        errors = work / "eval" / "errors.html"
        shoot(browser, errors.as_uri(), args.out / "errors.png", "1000,900", work / "profile")
        shoot_at(browser, errors, "type", args.out / "errors-type.png", "1000,900", work / "profile")


if __name__ == "__main__":
    main()
