"""The rating page of a packet (make human-eval): FastAPI, served by uvicorn, pages from Jinja2.

  human_server.py --packet DIR --host HOST --port PORT

Reads only packet.json (the replies under opaque ids, no model name) and raters.json (the
tokens); never the key. A rater opens their personal link /r/<token>: the token becomes an
HttpOnly, SameSite=Strict cookie and the page moves on to /rate (so the token is in no later
URL, and the server keeps no access log). Every answer is a POST committed to SQLite (WAL)
before the reply (scripts/py/lab/human_store.py). A rater reads and writes only their own
answers: a request for another rater's is refused (403), one without a valid token too (401).
"""
from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jinja2  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response  # noqa: E402

from lab import human, human_store as store  # noqa: E402

COOKIE = "rating_session"
PAGE = Path(__file__).resolve().parent / "human_page.zh.html"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                      "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"}
MIN_TOKEN = 32


def check_tokens(tokens: dict, packet: dict) -> None:
    missing = [r for r in packet["raters"] if len(tokens.get(r) or "") < MIN_TOKEN]
    if missing:
        raise human.HumanError(f"no valid token for rater {', '.join(missing)} in raters.json",
                               "draw the packet again with make human-pack: it writes a token per rater")


def create_app(packet_dir: Path) -> FastAPI:
    packet = human.load_packet(packet_dir)
    tokens = human.read_json(packet_dir / human.RATERS) or {}
    check_tokens(tokens, packet)
    db = store.connect(packet_dir / human.RATINGS)
    items = packet["items"]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PAGE.parent)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def rater_of(token: str | None) -> str | None:
        found = None
        for rater, known in tokens.items():
            if token and secrets.compare_digest(token.encode(), known.encode()):
                found = rater
        return found if found in packet["raters"] else None

    def page(name: str, status: int = 200, **facts) -> HTMLResponse:
        return HTMLResponse(env.get_template(PAGE.name).render(view=name, **facts), status_code=status, headers=HEADERS)

    def refused(status: int, reason: str) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=status, headers=HEADERS)

    def progress(rater: str) -> dict:
        done = store.rater_progress(packet, store.answers(db, rater))
        return {"done": sum(done.values()), "total": len(items), "complete": done}

    @app.get("/")
    def index():
        return page("welcome")

    @app.get("/r/{token}")
    def enter(token: str):
        rater = rater_of(token)
        if rater is None:
            return page("refused", 403)
        response = RedirectResponse("/rate", status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/rate")
    def resume(request: Request):
        rater = rater_of(request.cookies.get(COOKIE))
        if rater is None:
            return page("refused", 401)
        complete = progress(rater)["complete"]
        number = next((n for n, item in enumerate(items, 1) if not complete[item["id"]]), None)
        return RedirectResponse(f"/rate/{number}" if number else "/rate/done", status_code=303, headers=HEADERS)

    @app.get("/rate/done")
    def finished(request: Request):
        rater = rater_of(request.cookies.get(COOKIE))
        if rater is None:
            return page("refused", 401)
        state = progress(rater)
        return page("done", rater=rater, done=state["done"], total=state["total"])

    @app.get("/rate/{number}")
    def show(number: int, request: Request):
        rater = rater_of(request.cookies.get(COOKIE))
        if rater is None:
            return page("refused", 401)
        if not 1 <= number <= len(items):
            return page("refused", 404)
        item = items[number - 1]
        pair = human.side_replies(item, human.sides(packet, rater)[item["id"]])
        text = {r["id"]: r["text"] for r in item["replies"]}
        given = store.as_sides(packet, rater, store.answers(db, rater)).get(item["id"], {"A": {}, "B": {}})
        state = progress(rater)
        return page("item", rater=rater, number=number, total=len(items), done=state["done"],
                    item_id=item["id"], turns=item["turns"], replies={s: text[rid] for s, rid in pair.items()},
                    given=given, dimensions=human.DIMENSIONS, scale=human.SCALE)

    @app.post("/api/answer")
    async def answer(request: Request):
        rater = rater_of(request.cookies.get(COOKIE))
        if rater is None:
            return refused(401, "no valid rater token")
        if request.headers.get("x-requested-with") != "rating-page":
            return refused(403, "answers come from the rating page")
        try:
            body = await request.json()
        except ValueError:
            return refused(400, "not JSON")
        if not isinstance(body, dict):
            return refused(400, "not a JSON object")
        item = next((i for i in items if i["id"] == body.get("item")), None)
        if item is None:
            return refused(400, "unknown item")
        pair = human.side_replies(item, human.sides(packet, rater)[item["id"]])
        field, side, value = body.get("field"), body.get("side"), body.get("value")
        reply = ""
        if field in store.REPLY_FIELDS:
            if side not in pair:
                return refused(400, "side must be A or B")
            reply = pair[side]
        elif field == "preference":
            value = pair.get(value, "tie" if value == "tie" else None)
        try:
            store.give(db, packet, rater, item["id"], str(field), reply, "" if value is None else value)
        except human.HumanError as error:
            return refused(400, error.reason)
        state = progress(rater)
        return JSONResponse({"ok": True, "done": state["done"], "total": state["total"],
                             "complete": state["complete"][item["id"]]}, headers=HEADERS)

    @app.get("/api/raters/{rater}/answers")
    def own_answers(rater: str, request: Request):
        me = rater_of(request.cookies.get(COOKIE))
        if me is None:
            return refused(401, "no valid rater token")
        if rater != me:
            return refused(403, "a rater sees only their own answers")
        return JSONResponse({"rater": me, "answers": store.as_sides(packet, me, store.answers(db, me))}, headers=HEADERS)

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204, headers=HEADERS)

    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packet", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args(argv)
    try:
        app = create_app(Path(args.packet))
    except human.HumanError as error:
        print(f"error: {error.reason}\nfix: {error.fix}", file=sys.stderr)
        return 1
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, access_log=False, server_header=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
