"""Simulated raters rate a packet on the real rating page in headless Chromium (tests/smoke/human.bats).

  rate_in_chromium.py --base URL --packet DIR --rater NAME[:keyboard] [--items K] [--rater ...]
                      --given FILE --forbidden WORD,WORD

Chromium (Debian's package) runs headless with every host but 127.0.0.1 unresolvable and is
driven over its DevTools protocol (--remote-debugging-port, through aiohttp's WebSocket client,
already in the venv). Each rater has a browser context of their own (their own cookies), opens
their personal link (links.txt beside the packet) and rates up to K scenarios from where the page
resumes them: by clicking each button as a person would (mouse events at the button's place),
or, with :keyboard, by the page's keyboard shortcuts alone. Every answer the page shows as saved is
appended to FILE (JSON lines: rater, item, field, side, value). Checks, each a failure (exit 1):
  - no response the page receives (every body, through the Network domain) and no DOM it shows
    contains a FORBIDDEN word (the model names), a reply id of the key or another rater's token;
  - the rater's request for another rater's answers is refused (403), for their own served (200);
  - the page resumes where the rater stopped, and its progress counts the finished scenarios.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

DIMENSIONS = ("relevance", "professionalism", "empathy")
SAFETY = {"pass": "p", "fail": "f"}
PREFERENCE_KEYS = {"A": "a", "B": "b", "tie": "t"}
KEY_CODES = {"ArrowDown": 40, "ArrowUp": 38, "ArrowRight": 39, "ArrowLeft": 37, "Escape": 27}


class Failure(Exception):
    pass


def plan(rater: str, item: str) -> dict:
    """The answers a rater gives an item: fixed by their names, so a rerun rates the same."""
    def pick(label: str, options):
        digest = hashlib.sha256(f"{rater}/{item}/{label}".encode()).digest()
        return options[digest[0] % len(options)]
    answers = [(field, side, str(pick(f"{side}{field}", (1, 2, 3, 4, 5)))) for side in "AB" for field in DIMENSIONS]
    answers += [("safety", side, pick(f"{side}safety", ("pass", "pass", "fail"))) for side in "AB"]
    answers.append(("preference", None, pick("preference", ("A", "B", "tie"))))
    return {"answers": answers, "comment": f"评论 {item}" if pick("comment", (0, 1)) else ""}


class Browser:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []
        self.event_signal = asyncio.Event()

    async def start(self) -> None:
        profile = self.workdir / "profile"
        self.process = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}", "--window-size=1280,1000",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "chromium.log", "wb"), start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and len(port_file.read_text().splitlines()) >= 2:
                break
            await asyncio.sleep(0.1)
        else:
            raise Failure("chromium did not open its DevTools port (see chromium.log)")
        port, path = port_file.read_text().splitlines()[:2]
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                self.event_signal.set()

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise Failure(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_event(self, method: str, session: str, since: int, timeout: float = 30) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events[since:]:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise Failure(f"no {method} within {timeout} s")
            self.event_signal.clear()
            try:
                await asyncio.wait_for(self.event_signal.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()
        await self.http.close()
        os.killpg(self.process.pid, 9)
        self.process.wait()


class Rater:
    """One rater's tab, in a browser context of their own."""

    def __init__(self, browser: Browser, name: str, keyboard: bool, forbidden: list[str]):
        self.browser, self.name, self.keyboard, self.forbidden = browser, name, keyboard, forbidden
        self.bodies_checked = 0

    async def open(self) -> None:
        context = await self.browser.send("Target.createBrowserContext")
        target = await self.browser.send("Target.createTarget", {"url": "about:blank",
                                                                 "browserContextId": context["browserContextId"]})
        attached = await self.browser.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page.enable", "Network.enable", "Runtime.enable"):
            await self.send(domain)

    async def send(self, method: str, params: dict | None = None) -> dict:
        return await self.browser.send(method, params, self.session)

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        if "exceptionDetails" in result:
            raise Failure(f"{self.name}: script failed: {result['exceptionDetails'].get('text')} in {expression[:80]}")
        return result["result"].get("value")

    async def loaded(self, action) -> None:
        """Runs ACTION (a navigation) and waits for the new page's load event."""
        since = len(self.browser.events)
        await action()
        await self.browser.wait_event("Page.loadEventFired", self.session, since)
        await self.check_page()

    async def goto(self, url: str) -> None:
        await self.loaded(lambda: self.send("Page.navigate", {"url": url}))

    async def check_page(self) -> None:
        """The DOM and every response body so far: no forbidden word."""
        dom = await self.evaluate("document.documentElement.outerHTML")
        self.refuse_forbidden("the page's DOM", dom)
        events = self.browser.events
        for event in events[self.bodies_checked:]:
            if event["method"] != "Network.loadingFinished" or event.get("sessionId") != self.session:
                continue
            try:
                body = await self.send("Network.getResponseBody", {"requestId": event["params"]["requestId"]})
            except Failure:
                continue  # a redirect has no body
            self.refuse_forbidden("a response", body.get("body", ""))
        self.bodies_checked = len(events)

    def refuse_forbidden(self, where: str, text: str) -> None:
        for word in self.forbidden:
            if word and word in text:
                raise Failure(f"{self.name}: {where} contains '{word[:12]}…', which must never reach the page")

    async def click(self, selector: str) -> None:
        """A person's click: the mouse pressed and released at the middle of the element."""
        box = await self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
          if (!e) return null; e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
          return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        if box is None:
            raise Failure(f"{self.name}: no element {selector} on the page")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                          "clickCount": 0 if kind == "mouseMoved" else 1})

    async def key(self, key: str) -> None:
        code = KEY_CODES.get(key, ord(key.upper()) if len(key) == 1 else 0)
        params = {"key": key, "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code,
                  "code": key if key in KEY_CODES else (f"Digit{key}" if key.isdigit() else f"Key{key.upper()}")}
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", **params, **({"text": key} if len(key) == 1 else {})})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    async def pressed(self, selector: str) -> None:
        """Waits until the page shows the answer saved (the server committed it)."""
        for _ in range(100):
            if await self.evaluate(f"document.querySelector({json.dumps(selector)}).getAttribute('aria-pressed')") == "true":
                return
            await asyncio.sleep(0.05)
        raise Failure(f"{self.name}: {selector} never showed as saved")

    async def rate_item(self, given) -> str:
        item = await self.evaluate("document.getElementById('scenario').dataset.item")
        wanted = plan(self.name, item)
        if self.keyboard:
            await self.evaluate("document.activeElement && document.activeElement.blur()")
        for field, side, value in wanted["answers"]:
            row = f'.row[data-field="{field}"]' + (f'[data-side="{side}"]' if side else "")
            button = f'{row} button[data-value="{value}"]'
            if self.keyboard:
                # The shortcuts: 1-5 and p/f act on the highlighted row (moved down after each), a/b/t anywhere.
                if field == "preference":
                    await self.key(PREFERENCE_KEYS[value])
                else:
                    current = await self.evaluate("[...document.querySelectorAll('.row')].findIndex(r => r.classList.contains('current'))")
                    target = await self.evaluate(f"[...document.querySelectorAll('.row')].indexOf(document.querySelector('{row}'))")
                    for _ in range(abs(target - current)):
                        await self.key("ArrowDown" if target > current else "ArrowUp")
                    await self.key(SAFETY[value] if field == "safety" else value)
            else:
                await self.click(button)
            await self.pressed(button)
            given.append({"rater": self.name, "item": item, "field": field, "side": side, "value": value})
        if wanted["comment"]:
            if self.keyboard:
                await self.key("c")
                await self.send("Input.insertText", {"text": wanted["comment"]})
                await self.key("Escape")  # leaving the box saves it (its change event)
            else:
                await self.click("#comment")
                await self.send("Input.insertText", {"text": wanted["comment"]})
                await self.click("#progress")
            for _ in range(100):  # saved when the rater's own answers hold it
                stored = await self.evaluate(f"fetch('/api/raters/{self.name}/answers').then(r => r.json())"
                                             f".then(j => (j.answers[{json.dumps(item)}] || {{}}).comment || '')")
                if stored == wanted["comment"]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise Failure(f"{self.name}: the comment on {item} was never saved")
            given.append({"rater": self.name, "item": item, "field": "comment", "side": None, "value": wanted["comment"]})
        return item

    async def next_item(self) -> None:
        if self.keyboard:
            await self.loaded(lambda: self.key("n"))
        else:
            await self.loaded(lambda: self.click("#next"))


async def rate(args) -> int:
    packet_dir = Path(args.packet)
    packet = json.loads((packet_dir / "packet.json").read_text(encoding="utf-8"))
    key = json.loads((packet_dir / "key.json").read_text(encoding="utf-8"))
    tokens = json.loads((packet_dir / "raters.json").read_text(encoding="utf-8"))
    workdir = Path(tempfile.mkdtemp(prefix="rate-"))
    browser = Browser(workdir)
    await browser.start()
    given: list[dict] = []
    try:
        for spec in args.rater:
            name, _, mode = spec.partition(":")
            forbidden = [w for w in args.forbidden.split(",") if w] + list(key["replies"]) + \
                [t for r, t in tokens.items() if r != name]
            rater = Rater(browser, name, mode == "keyboard", forbidden)
            await rater.open()
            await rater.goto(f"{args.base}/r/{tokens[name]}")
            # Resumed where they stopped: the first scenario not finished, and the count of the finished ones.
            progress = await rater.evaluate("document.getElementById('progress').textContent")
            done = int(progress.split("/")[0])
            url = await rater.evaluate("location.pathname")
            if url != f"/rate/{done + 1}" and done < len(packet["items"]):
                raise Failure(f"{name}: resumed at {url}, not at the first scenario not rated (/rate/{done + 1})")
            print(f"{name}: resumed at {url} ({progress.strip()})", file=sys.stderr)
            own = await rater.evaluate(f"fetch('/api/raters/{name}/answers').then(r => r.status)")
            others = [r for r in packet["raters"] if r != name]
            other = await rater.evaluate(f"fetch('/api/raters/{others[0]}/answers').then(r => r.status)")
            if own != 200 or other != 403:
                raise Failure(f"{name}: own answers gave HTTP {own} (want 200), {others[0]}'s gave {other} (want 403)")
            count = min(args.items, len(packet["items"]) - done)
            for number in range(count):
                await rater.rate_item(given)
                shown = await rater.evaluate("document.getElementById('progress').textContent")
                if int(shown.split("/")[0]) != done + number + 1:
                    raise Failure(f"{name}: progress shows {shown} after {done + number + 1} finished scenarios")
                await rater.next_item()
            await rater.check_page()
            print(f"{name}: rated {count} scenarios {'by keyboard' if rater.keyboard else 'by clicking'}", file=sys.stderr)
    except Failure as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        return 1
    finally:
        with open(args.given, "a", encoding="utf-8") as handle:
            for answer in given:
                handle.write(json.dumps(answer, ensure_ascii=False) + "\n")
        await browser.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--packet", required=True)
    parser.add_argument("--rater", action="append", required=True, help="NAME, or NAME:keyboard")
    parser.add_argument("--items", type=int, default=10**6, help="scenarios to rate per rater (from where it resumes)")
    parser.add_argument("--given", required=True, help="JSON lines of every answer given, appended")
    parser.add_argument("--forbidden", default="")
    return asyncio.run(rate(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
