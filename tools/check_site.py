"""Check the built website: internal links, then every page in a real browser.

    python tools/check_site.py [_build/html] [--screenshots DIR] [--no-browser]

1. Link check (no network): every relative ``href``/``src`` in every HTML page must point at a
   file of the build, and every ``#fragment`` at an ``id`` in the target page.
2. Browser check: serves the build with ``python -m http.server`` on 127.0.0.1 and opens every
   page in headless Chromium through the DevTools protocol. A page fails on an uncaught
   exception, a console error, a request that fails or answers >= 400, an image that did not
   load, or math that MathJax did not typeset (raw TeX left on the page). A screenshot of each
   page is saved.

Exits 1 and lists the problems if any page fails.
"""

from __future__ import annotations

import argparse
import base64
import html.parser
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

# --------------------------------------------------------------------------- link check


class _Page(html.parser.HTMLParser):
    """The ids a page defines and the relative links it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and not re.match(r"^[a-z][a-z0-9+.-]*:|^//", value, re.I):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_links(root: Path) -> list[str]:
    """Broken relative links and fragments in every page under ``root``."""
    # _static holds the theme's Jinja templates (*macros.html), not pages
    pages = {p: _parse(p) for p in root.rglob("*.html") if not p.relative_to(root).as_posix().startswith("_static/")}
    problems = []
    for path, page in sorted(pages.items()):
        for link in page.links:
            parts = urlsplit(link)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(root)}: {link}"
            if not target.exists():
                problems.append(f"{where} -> missing file")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where} -> no id {parts.fragment!r}")
    return problems


# --------------------------------------------------------------------------- browser check


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Browser:
    """Headless Chromium driven over the DevTools protocol (one tab, flattened session)."""

    def __init__(self, executable: str) -> None:
        import websocket  # websocket-client, in the package's "book" extra

        self.profile = tempfile.mkdtemp(prefix="check-site-")
        self.process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = self.process.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            url = match.group(1) if match else None
        if url is None:
            self.close()
            raise RuntimeError("Chromium did not start its DevTools endpoint within 60 s")
        self.ws = websocket.create_connection(url, timeout=60)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        message = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(e.get("method") == method for e in self.events):
                return True
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # timeout
                break
        self.ws.settimeout(60)
        return any(e.get("method") == method for e in self.events)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        if getattr(self, "ws", None):
            self.ws.close()
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# Waits for MathJax (if the page loads it) to finish, then reports what did not render.
_PAGE_STATE = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const math = document.querySelectorAll('.math, div.math, span.math');
  const typeset = document.querySelectorAll('mjx-container').length;
  const raw = Array.from(math).filter(e => !e.querySelector('mjx-container')).length;
  const images = Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
  return {math: math.length, typeset: typeset, raw: raw, brokenImages: images, title: document.title};
})()
"""


def _problems_of(events: list[dict], base: str) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(f"uncaught exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            found.append("console error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            if entry.get("url") != base + "favicon.ico" and (entry.get("url", "").startswith(base) or not entry.get("url")):
                found.append(f"log error: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')}")
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            if response.get("url") == base + "favicon.ico":
                continue  # the browser asks for it by itself; no page links to one
            if response.get("status", 200) >= 400 and response.get("url", "").startswith(base):
                found.append(f"HTTP {response['status']}: {response['url']}")
    return found


def check_in_browser(root: Path, executable: str, screenshots: Path) -> list[str]:
    """Open every page of ``root`` in headless Chromium; problems as ``page: message`` lines."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    browser = _Browser(executable)
    screenshots.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        for path in sorted(root.rglob("*.html")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(("_static/", "_sources/", "_images/")):
                continue
            browser.events.clear()
            browser.call("Page.navigate", {"url": base + relative}, session=True)
            if not browser.wait_for("Page.loadEventFired", timeout=60):
                problems.append(f"{relative}: did not finish loading in 60 s")
                continue
            state = browser.evaluate(_PAGE_STATE) or {}
            time.sleep(0.2)  # late console messages
            browser.wait_for("__none__", timeout=0.3)
            page_problems = _problems_of(browser.events, base)
            if state.get("raw"):
                page_problems.append(f"{state['raw']} of {state['math']} math elements left as raw TeX")
            page_problems += [f"image did not load: {src}" for src in state.get("brokenImages", [])]
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
            (screenshots / (relative.replace("/", "__").removesuffix(".html") + ".png")).write_bytes(base64.b64decode(shot))
            problems += [f"{relative}: {p}" for p in page_problems]
            print(f"  {relative}: {len(page_problems)} problem(s), {state.get('typeset', 0)} typeset formulas")
    finally:
        browser.close()
        server.terminate()
        server.wait()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    parser.add_argument("--no-browser", action="store_true", help="the link check only")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium")
                        or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    args = parser.parse_args(argv)
    if not (args.root / "index.html").exists():
        parser.error(f"{args.root} has no index.html: build the book first (make book)")
    problems = check_links(args.root)
    print(f"link check: {len(problems)} broken internal link(s) in {args.root}")
    if not args.no_browser:
        if not args.chromium:
            parser.error("no Chromium found: install Debian's chromium, set CHROMIUM, or pass --no-browser")
        print(f"browser check with {args.chromium}; screenshots in {args.screenshots}")
        problems += check_in_browser(args.root, args.chromium, args.screenshots)
    for problem in problems:
        print("FAIL", problem)
    print("site check:", "passed" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
