"""Stand-in for the ModelScope and Hugging Face hub APIs and SwanLab's login, on 127.0.0.1.

Usage: python tests/stubs/hub_server.py PORT LOG
Serves the requests scripts/py/check_remote.py makes (GitHub's /repos/OWNER/NAME/commits/REV too).
A repo's name decides the answer:
  missing*  404 (Hugging Face: X-Error-Code RepoNotFound)
  private*  401 without a token, 403 with one
  gated*    Hugging Face: the card (gated: "manual"), then 403 GatedRepo on auth-check
  slow*     answers after 30 s
  huge*     found, 2**50 bytes (1 PiB)
  anything else: found, two files of 1 MiB and 2 MiB, plus a 5 MiB "original/consolidated.pt"
  that ms-swift does not download
SwanLab's POST /api/login/api_key accepts only the key "good-key". Each request is
appended to LOG as "METHOD PATH auth=yes|no" (never a header's value).
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MiB = 1 << 20
SHA = "0123456789abcdef0123456789abcdef01234567"
FILES = [("config.json", 1 * MiB), ("model.safetensors", 2 * MiB), ("original/consolidated.pt", 5 * MiB)]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet; the LOG file records requests
        pass

    def record(self) -> None:
        auth = "yes" if self.headers.get("Authorization") or self.headers.get("authorization") else "no"
        with open(sys.argv[2], "a", encoding="utf-8") as log:
            log.write(f"{self.command} {urlsplit(self.path).path} auth={auth}\n")

    def reply(self, status: int, body: dict, headers: dict = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.record()
        if urlsplit(self.path).path != "/api/login/api_key":
            return self.reply(404, {"message": "not found"})
        if self.headers.get("authorization") == "good-key":
            return self.reply(200, {"sid": "s", "expiredAt": "2099-01-01T00:00:00.000Z",
                                    "userInfo": {"username": "tester", "name": "Tester"}})
        return self.reply(401, {"code": "UNAUTHORIZED", "message": "invalid api key"})

    def do_GET(self) -> None:
        self.record()
        parts = urlsplit(self.path).path.strip("/").split("/")
        # /api/v1/{models|datasets}/OWNER/NAME/repo/{files|tree}: ModelScope
        # /api/{models|datasets}/OWNER/NAME/{revision/REV|auth-check}: Hugging Face
        if parts[:1] == ["repos"] and len(parts) >= 5 and parts[3] == "commits":
            # GitHub's GET /repos/OWNER/NAME/commits/REV (a benchmark's source on GitHub)
            if parts[2].startswith("missing"):
                return self.reply(404, {"message": "Not Found"})
            return self.reply(200, {"sha": SHA})
        modelscope = parts[:2] == ["api", "v1"]
        rest = parts[2:] if modelscope else parts[1:]
        if len(rest) < 4 or rest[0] not in ("models", "datasets"):
            return self.reply(404, {"message": "no such endpoint"})
        name, action = rest[2], rest[3]
        has_token = bool(self.headers.get("Authorization"))
        if name.startswith("slow"):
            time.sleep(30)
        if name.startswith("missing"):
            return self.reply(404, {"Code": 10010205001, "Message": "not found", "Success": False},
                              {"X-Error-Code": "RepoNotFound"})
        if name.startswith("private"):
            status = 403 if has_token else 401
            return self.reply(status, {"Code": status, "Message": "no access", "Success": False},
                              {"X-Error-Code": "RepoNotFound"} if not has_token else {})
        files = [("weights.bin", 1 << 50)] if name.startswith("huge") else FILES
        if modelscope:
            entries = [{"Name": path.rsplit("/", 1)[-1], "Path": path, "Type": "blob", "Size": size,
                        "Revision": f"commit{i}", "CommittedDate": 1700000000 + i}
                       for i, (path, size) in enumerate(files)]
            return self.reply(200, {"Code": 200, "Data": {"Files": entries}, "Success": True})
        if action == "auth-check":
            if name.startswith("gated"):
                return self.reply(403, {"error": "gated"}, {"X-Error-Code": "GatedRepo"})
            return self.reply(200, {})
        return self.reply(200, {"id": f"{rest[1]}/{name}", "sha": SHA,
                                "gated": "manual" if name.startswith("gated") else False,
                                "siblings": [{"rfilename": path, "size": size} for path, size in files]})


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
