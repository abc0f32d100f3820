"""Preflight's remote checks: the SwanLab key, the model and dataset on their hub, and the public
sources of the benchmarks fetched on the real run.

Usage: python scripts/py/check_remote.py swanlab
       python scripts/py/check_remote.py hub --config SFT.yaml --repo-root DIR --cache-root DIR
           [--model ID] [--dataset ID] [--offline] [--revisions-out FILE]
       python scripts/py/check_remote.py sources --eval-config EVAL.yaml --repo-root DIR [--offline]
           (each benchmark with a fetch script and a `hub` in configs/benchmarks.yaml whose set is
           not in its local_path yet: its dataset answers on that hub; github:OWNER/NAME@REV asks
           GITHUB_API_URL, default https://api.github.com, for that commit)

Secrets come only from the environment: SWANLAB_API_KEY (swanlab), HF_TOKEN and
MODELSCOPE_API_TOKEN (or the tokens those SDKs stored at login). Endpoints are the
ones the tools use: SWANLAB_API_HOST, MODELSCOPE_ENDPOINT (or MODELSCOPE_DOMAIN),
HF_ENDPOINT. Every request is a single attempt with a REMOTE_CHECK_TIMEOUT-second
time-out (default 5). Nothing is written except --revisions-out.

Each failed check prints "[preflight] error: ..." and "[preflight] fix: ..." on
stderr; the exit status is the number of failed checks. `hub` prints on stdout the
bytes still to download into the cache (0 offline or when everything is cached).
"""
import argparse
import fnmatch
import os
import sys
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from lab import configs
from lab.configs import SwiftEntry, cached_location
from lab.files import write_json_atomic

STEP = os.environ.get("STEP_NAME", "preflight")
# What ms-swift 4.6 leaves out of a model download (swift/utils/hub_utils.py).
SWIFT_IGNORE_PATTERNS = ["*.zip", "*.gguf", "*.pth", "*.pt", "consolidated*", "onnx/*", "*.safetensors.md",
                         "*.msgpack", "*.onnx", "*.ot", "*.h5"]
HUB_NAMES = {"modelscope": "ModelScope", "huggingface": "Hugging Face", "github": "GitHub"}
TOKEN_VARS = {"modelscope": "MODELSCOPE_API_TOKEN", "huggingface": "HF_TOKEN"}


def log(message: str) -> None:
    print(f"[{STEP}] {message}", file=sys.stderr)


class Failures:
    def __init__(self) -> None:
        self.count = 0

    def add(self, error: str, fix: str) -> None:
        print(f"[{STEP}] error: {error}\n[{STEP}] fix: {fix}", file=sys.stderr)
        self.count += 1


def timeout_seconds() -> float:
    return float(os.environ.get("REMOTE_CHECK_TIMEOUT") or 5)


# --- SwanLab ------------------------------------------------------------------------


def swanlab_api_host() -> str:
    """The API host swanlab itself would use (SWANLAB_API_HOST, its config files, or the cloud)."""
    from swanlab.sdk.internal.settings import create_settings

    return create_settings().api_host


def check_swanlab(failures: Failures) -> None:
    import requests

    key = os.environ.get("SWANLAB_API_KEY", "")
    host = swanlab_api_host()
    sync_fix = ("set SWANLAB_MODE=local and upload the run later with `swanlab sync` (docs/troubleshooting.md: SwanLab offline), "
                "or check the network and SWANLAB_API_HOST")
    try:
        # The request swanlab.login makes (sdk/internal/pkg/client/bootstrap.py), but once,
        # without its retries and with our time-out, and telling a refusal from no network.
        response = requests.post(f"{host}/api/login/api_key", headers={"authorization": key},
                                 timeout=timeout_seconds())
    except requests.Timeout:
        failures.add(f"no network to SwanLab: {host} did not answer within {timeout_seconds():g} s", sync_fix)
        return
    except requests.RequestException as error:
        failures.add(f"no network to SwanLab: cannot connect to {host} ({type(error).__name__})", sync_fix)
        return
    if response.status_code in (401, 403):
        failures.add(f"SwanLab at {host} rejected the key (HTTP {response.status_code})",
                     "check SWANLAB_TOKEN: copy the API key from your SwanLab settings page into the env file")
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.ok or not isinstance(body, dict) or "sid" not in body:
        failures.add(f"SwanLab at {host} did not accept the login (HTTP {response.status_code})",
                     f"retry later, or {sync_fix}")
        return
    user = (body.get("userInfo") or {}).get("username") or "?"
    log(f"SwanLab: the key is accepted by {host} (user {user})")


# --- hubs -----------------------------------------------------------------------------


def read_entries(args) -> list[SwiftEntry]:
    """The config's model and datasets (MODEL, DATASET instead when given), parsed as ms-swift does."""
    return configs.read_entries(Path(args.config), Path(args.repo_root), args.model, args.dataset)


class HubError(Exception):
    """A hub answer that stops the check: (error, fix)."""

    def __init__(self, error: str, fix: str, unreachable: bool = False) -> None:
        super().__init__(error)
        self.error, self.fix, self.unreachable = error, fix, unreachable


def hub_token(hub: str) -> Optional[str]:
    if hub == "huggingface":
        from huggingface_hub import get_token

        return get_token()
    from modelscope_hub.config import HubConfig

    return HubConfig().token or None


def hub_endpoint(hub: str) -> str:
    if hub == "huggingface":
        from huggingface_hub import constants

        return constants.ENDPOINT
    import warnings

    from modelscope_hub.config import HubConfig

    with warnings.catch_warnings():  # MODELSCOPE_DOMAIN is deprecated but still honoured
        warnings.simplefilter("ignore")
        return HubConfig().endpoint


def hub_get(session, url: str, params: dict, entry: SwiftEntry, endpoint: str):
    """One GET against the hub; network failures and refusals become HubError."""
    import requests

    hub = HUB_NAMES[entry.hub]
    try:
        response = session.get(url, params=params, timeout=timeout_seconds())
    except requests.Timeout:
        raise HubError(f"{hub} ({endpoint}) did not answer within {timeout_seconds():g} s about {entry.kind} "
                       f"'{entry.repo_id}'", network_fix(entry), unreachable=True) from None
    except requests.RequestException as error:
        raise HubError(f"cannot reach {hub} ({endpoint}) to check {entry.kind} '{entry.repo_id}' "
                       f"({type(error).__name__})", network_fix(entry), unreachable=True) from None
    return response


def network_fix(entry: SwiftEntry) -> str:
    what = "MODEL" if entry.kind == "model" else "DATASET"
    return (f"check the network (a proxy: HTTPS_PROXY); or, with both already downloaded, set OFFLINE=1; "
            f"or point {what} at a local copy; or skip this check with SKIP_REMOTE_CHECKS=hub")


def refusal(entry: SwiftEntry, status: int, error_code: str, has_token: bool) -> HubError:
    hub, token_var = HUB_NAMES[entry.hub], TOKEN_VARS[entry.hub]
    what = "MODEL" if entry.kind == "model" else "DATASET"
    where = f"{entry.kind} '{entry.repo_id}' on {hub}"
    if error_code == "RevisionNotFound":
        return HubError(f"{where} has no revision '{entry.revision}'",
                        "fix model_revision in the experiment's sft.yaml")
    if error_code == "GatedRepo" or (status in (401, 403) and has_token):
        return HubError(f"{where} is gated or private, and "
                        + ("your token has no access" if has_token else "no token was given") + f" (HTTP {status})",
                        f"request access on the {entry.kind}'s {hub} page"
                        + ("" if has_token else f", then export {token_var}=<your {hub} token>"))
    if status in (401, 403):
        return HubError(f"{where} is private or gated: {hub} refused it without a token (HTTP {status})",
                        f"export {token_var}=<a {hub} token with access>, or point {what} at a local copy")
    if status == 404 or error_code == "RepoNotFound":
        private = "" if has_token else f" (if it is private: export {token_var}=<token>)"
        return HubError(f"{where} does not exist, and it is no local path either (HTTP {status})",
                        f"correct the id in the experiment's sft.yaml or {what} in the env file{private}")
    return HubError(f"{hub} answered HTTP {status} about {where}", network_fix(entry))


def download_size(entry: SwiftEntry, files: list) -> int:
    """Bytes of the (path, size) files ms-swift downloads: for a model, not SWIFT_IGNORE_PATTERNS."""
    if entry.kind == "model":
        files = [(path, size) for path, size in files
                 if not any(fnmatch.fnmatch(path, pattern) for pattern in SWIFT_IGNORE_PATTERNS)]
    return sum(size for _, size in files)


def ask_huggingface(session, entry: SwiftEntry, endpoint: str, has_token: bool) -> dict:
    revision = entry.revision or "main"
    base = f"{endpoint}/api/{entry.kind}s/{entry.repo_id}"
    # huggingface_hub's model_info/dataset_info(files_metadata=True) request
    response = hub_get(session, f"{base}/revision/{quote(revision, safe='')}", {"blobs": "true"}, entry, endpoint)
    if not response.ok:
        raise refusal(entry, response.status_code, response.headers.get("X-Error-Code", ""), has_token)
    info = response.json()
    if info.get("gated"):
        # The card of a gated repo is public; its files are not. auth_check asks for those.
        check = hub_get(session, f"{base}/auth-check", {}, entry, endpoint)
        if not check.ok:
            raise refusal(entry, check.status_code, check.headers.get("X-Error-Code") or "GatedRepo", has_token)
    files = [(item.get("rfilename", ""), int(item.get("size") or 0)) for item in info.get("siblings") or []]
    size = download_size(entry, files)
    return {"revision": info.get("sha") or revision, "size_bytes": size}


def modelscope_body(response, entry: SwiftEntry, has_token: bool):
    if not response.ok:
        raise refusal(entry, response.status_code, "", has_token)
    body = response.json()
    # The legacy API may answer 200 with a failure in the body.
    if isinstance(body, dict) and body.get("Success") is False:
        raise refusal(entry, 404, "", has_token)
    data = body.get("Data", body) if isinstance(body, dict) else body
    if isinstance(data, dict):
        data = data.get("Files") or data.get("files") or []
    return data if isinstance(data, list) else []


def commit_time(item: dict) -> float:
    """A file entry's CommittedDate (epoch seconds on ModelScope), 0 when absent or not a number."""
    try:
        return float(item.get("CommittedDate") or 0)
    except (TypeError, ValueError):
        return 0.0


def ask_modelscope(session, entry: SwiftEntry, endpoint: str, has_token: bool) -> dict:
    revision = entry.revision or "master"
    base = f"{endpoint}/api/v1/{entry.kind}s/{entry.repo_id}"
    # modelscope_hub's list_repo_files: models repo/files, datasets repo/tree in pages
    if entry.kind == "model":
        response = hub_get(session, f"{base}/repo/files", {"Revision": revision, "Recursive": "True"},
                           entry, endpoint)
        items = modelscope_body(response, entry, has_token)
    else:
        items, page, page_size = [], 1, 200
        while True:
            response = hub_get(session, f"{base}/repo/tree", {"Revision": revision, "Recursive": "True",
                                                              "PageNumber": page, "PageSize": page_size},
                               entry, endpoint)
            batch = modelscope_body(response, entry, has_token)
            items += batch
            if len(batch) < page_size:
                break
            page += 1
    blobs = [item for item in items if (item.get("Type") or "blob") != "tree"]
    files = [(item.get("Path") or item.get("Name") or "", int(item.get("Size") or 0)) for item in blobs]
    size = download_size(entry, files)
    # ModelScope has no repo-level head commit in this API: the newest file commit is the revision's state.
    newest = max(blobs, key=commit_time, default={})
    return {"revision": newest.get("Revision") or revision, "size_bytes": size}


def ask_hub(entry: SwiftEntry) -> dict:
    import requests

    endpoint = hub_endpoint(entry.hub).rstrip("/")
    token = hub_token(entry.hub)
    with requests.Session() as session:
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        ask = ask_huggingface if entry.hub == "huggingface" else ask_modelscope
        return ask(session, entry, endpoint, bool(token))


def check_offline(entries: list, cache_root: Path, failures: Failures) -> None:
    for entry in entries:
        location = cached_location(entry, cache_root)
        what = "MODEL" if entry.kind == "model" else "DATASET"
        if location:
            log(f"{entry.kind} '{entry.repo_id}' is in the {HUB_NAMES[entry.hub]} cache ({location})")
            continue
        sub = "modelscope" if entry.hub == "modelscope" else "huggingface"
        failures.add(f"OFFLINE=1, but {entry.kind} '{entry.raw}' is neither a local path nor in the "
                     f"{HUB_NAMES[entry.hub]} cache under {cache_root / sub}",
                     f"download it once with OFFLINE=0 (make train fills CACHE_ROOT), or point {what} "
                     f"in the env file at a local copy")


def human_size(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def check_online(entries: list, cache_root: Path, failures: Failures, revisions_out: Optional[str]) -> int:
    """Asks the hub about each entry; returns the bytes still to download into the cache."""
    to_download, found, unreachable = 0, {}, set()
    for entry in entries:
        if entry.hub in unreachable:  # one time-out per hub is enough
            log(f"{entry.kind} '{entry.repo_id}': not checked, {HUB_NAMES[entry.hub]} is unreachable")
            continue
        try:
            answer = ask_hub(entry)
        except HubError as error:
            failures.add(error.error, error.fix)
            if error.unreachable:
                unreachable.add(entry.hub)
            continue
        # hub-revisions.json has one dataset entry: a second hub dataset is checked, not recorded
        found.setdefault(entry.kind, {"id": entry.repo_id, "hub": entry.hub, **answer})
        location = cached_location(entry, cache_root)
        if not location:
            to_download += answer["size_bytes"]
        log(f"{entry.kind} '{entry.repo_id}' on {HUB_NAMES[entry.hub]}: revision {answer['revision']}, "
            f"{human_size(answer['size_bytes'])}, " + (f"in the cache ({location})" if location else "to download"))
    if revisions_out and failures.count == 0:
        write_json_atomic(Path(revisions_out), found)
    return to_download


def check_hub(args, failures: Failures) -> int:
    entries = read_entries(args)
    for entry in entries:
        if entry.local:
            log(f"{entry.kind} '{entry.raw}' is a local path: no hub to ask")
    remote = [entry for entry in entries if not entry.local]
    if not remote:
        return 0
    if args.offline:
        check_offline(remote, Path(args.cache_root), failures)
        return 0
    return check_online(remote, Path(args.cache_root), failures, args.revisions_out)


# --- the benchmarks' public sources ------------------------------------------------------


def fetched_sources(eval_config: Path, repo_root: Path) -> list:
    """(benchmark, SwiftEntry) of each benchmark of eval.yaml fetched from a hub on the real run (its
    suite entry's fetch and hub) whose set is not in its local_path yet."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import eval_suite

    config = eval_suite.resolve(eval_config)
    found = []
    for name in config.get("benchmarks") or []:
        section = config.get(name) or {}
        fetch, hub, local_path = section.get("fetch"), section.get("hub"), section.get("local_path")
        if not fetch or fetch == "none" or not hub:
            continue
        path = Path(os.path.expanduser(str(local_path or "")))
        if local_path and (path if path.is_absolute() else repo_root / path).is_dir():
            continue
        kind, _, repo_id = str(hub).partition(":")
        repo_id, _, revision = repo_id.partition("@")
        found.append((name, SwiftEntry("dataset", str(hub), repo_id=repo_id, revision=revision or None,
                                  hub=kind if kind in ("huggingface", "github") else "modelscope")))
    return found


def ask_github(entry: SwiftEntry) -> dict:
    """GitHub's answer about a repository at a revision (GITHUB_API_URL, default api.github.com)."""
    import requests

    endpoint = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    revision = entry.revision or "HEAD"
    with requests.Session() as session:
        response = hub_get(session, f"{endpoint}/repos/{entry.repo_id}/commits/{revision}", {}, entry, endpoint)
    if not response.ok:
        raise HubError(f"dataset '{entry.repo_id}' on GitHub has no revision '{revision}' or does not exist "
                       f"(HTTP {response.status_code})", "")
    return {"revision": response.json().get("sha") or revision, "size_bytes": 0}


def check_sources(args, failures: Failures) -> None:
    """Each fetched benchmark's source answers on its hub (online), or its set is there (offline)."""
    unreachable = set()
    for name, entry in fetched_sources(Path(args.eval_config), Path(args.repo_root)):
        hub = HUB_NAMES[entry.hub]
        fix = (f"check the network to {hub} (a proxy: HTTPS_PROXY); or fetch it elsewhere into the benchmark's "
               f"local_path (its suite entry's fetch script); or skip this check with SKIP_REMOTE_CHECKS=hub")
        if args.offline:
            failures.add(f"OFFLINE=1, but benchmark {name}'s questions are not fetched yet (from {entry.raw})",
                         f"run its evaluation once with OFFLINE=0, or put the set into its local_path")
            continue
        if entry.hub in unreachable:
            log(f"benchmark {name}: not checked, {hub} is unreachable")
            continue
        try:
            answer = ask_github(entry) if entry.hub == "github" else ask_hub(entry)
        except HubError as error:
            if error.unreachable:
                unreachable.add(entry.hub)
                failures.add(f"benchmark {name}: {error.error}", fix)
            else:
                failures.add(f"benchmark {name}: {error.error}", f"fix hub: {entry.raw} of {name} in configs/benchmarks.yaml")
            continue
        log(f"benchmark {name}: its source, dataset '{entry.repo_id}' on {hub}, answers (revision {answer['revision']}, "
            f"{human_size(answer['size_bytes'])}); fetched when it first runs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("swanlab")
    hub = commands.add_parser("hub")
    hub.add_argument("--config", required=True)
    hub.add_argument("--repo-root", required=True)
    hub.add_argument("--cache-root", required=True)
    hub.add_argument("--model")
    hub.add_argument("--dataset")
    hub.add_argument("--offline", action="store_true")
    hub.add_argument("--revisions-out")
    sources = commands.add_parser("sources")
    sources.add_argument("--eval-config", required=True)
    sources.add_argument("--repo-root", required=True)
    sources.add_argument("--offline", action="store_true")
    args = parser.parse_args()
    failures = Failures()
    try:
        if args.command == "swanlab":
            check_swanlab(failures)
        elif args.command == "sources":
            check_sources(args, failures)
        else:
            print(check_hub(args, failures))
    except ImportError as error:
        failures.add(f"the remote checks cannot import {error.name} ({sys.executable})", "run: make env")
    return min(failures.count, 100)


if __name__ == "__main__":
    sys.exit(main())
