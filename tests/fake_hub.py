"""A tiny in-process stand-in for the Hugging Face Hub HTTP API, for offline push/download tests.

``huggingface_hub`` is pointed at it with ``HfApi(endpoint=hub.url)`` or ``HF_ENDPOINT``. It binds
127.0.0.1 on a random port, serves from a daemon thread, records every request, and shuts itself
down after ``lifetime`` seconds even if a test forgets to stop it.

Implemented (what huggingface_hub 2.4 calls for create_repo / create_branch / list_repo_files /
create_commit / repo_info / snapshot_download):

* ``POST /api/repos/create``                         -> 200 ``{"url"}``, 409 if it exists
* ``POST /api/models/{ns}/{name}/branch/{branch}``   -> 200, 409 if it exists
* ``GET  /api/models/{ns}/{name}/tree/{rev}[/path]`` -> file entries (no pagination)
* ``GET  /api/models/{ns}/{name}[/revision/{rev}]``  -> ``{"id", "sha", "siblings", "private"}``
* ``POST /api/validate-yaml``                         -> parses the README front matter with PyYAML, 400 if invalid
* ``POST /api/models/{ns}/{name}/preupload/{rev}``    -> every file ``uploadMode: "regular"``: content then
  travels base64 inside the commit payload, so no LFS/Xet transfer endpoint is needed
* ``POST /api/models/{ns}/{name}/commit/{rev}``       -> applies the ndjson ``file`` / ``deletedFile`` /
  ``deletedFolder`` operations atomically (all or nothing)
* ``HEAD/GET /{ns}/{name}/resolve/{rev}/{path}``      -> file bytes with ``X-Repo-Commit`` and ``ETag``

With ``token`` set, every request must carry ``Authorization: Bearer <token>`` (else 401).
``fail_commit=True`` makes the commit endpoint answer 500 (to test that nothing half-lands).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commits: list[dict[str, Any]] = field(default_factory=list)


class FakeHub:
    def __init__(self, token: str | None = None, lifetime: float = 60.0) -> None:
        self.token = token
        self.lifetime = lifetime
        self.requests: list[Recorded] = []
        self.repos: dict[str, Repo] = {}
        self.fail_commit = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "FakeHub not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[revision])

    def calls(self, method: str | None = None, pattern: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (pattern is None or re.search(pattern, r.path))
        ]


def _split_repo(rest: str) -> tuple[str, str]:
    ns, name, *tail = rest.split("/", 2)
    return f"{ns}/{name}", (tail[0] if tail else "")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, obj: Any = None, *, raw: bytes | None = None, headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        body = raw if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message}, headers={"X-Error-Message": message})

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        with self.fake._lock:
            self.fake.requests.append(Recorded(method, path, query, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.fake.token is not None and self.headers.get("Authorization") != f"Bearer {self.fake.token}":
            return self._error(401, "Invalid credentials in Authorization header")
        try:
            self._route(method, path, query, body)
        except Exception as exc:  # a bug in the fake: make it visible as a 500
            self._error(500, f"fake hub error: {exc!r}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    # ------------------------------------------------------------------ routes
    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        fake = self.fake
        if method == "POST" and path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload.get('organization')}/{payload['name']}"
            with fake._lock:
                if repo_id in fake.repos:  # the Hub's 409 still carries the url (create_repo exist_ok reads it)
                    msg = "You already created this model repo"
                    return self._send(409, {"error": msg, "url": f"{fake.url}/{repo_id}"}, headers={"X-Error-Message": msg})
                fake.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
            return self._send(200, {"url": f"{fake.url}/{repo_id}", "name": repo_id})
        if method == "POST" and path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                meta = yaml.safe_load(match.group(1)) if match else {}
                assert isinstance(meta, dict | type(None))
            except Exception as exc:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            return self._send(200, {"errors": [], "warnings": []})
        if path.startswith("/api/models/"):
            repo_id, rest = _split_repo(path[len("/api/models/"):])
            repo = fake.repos.get(repo_id)
            if repo is None:
                return self._error(404, "Repository not found")
            return self._api_model(method, repo_id, repo, rest, body)
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m and method in ("GET", "HEAD"):
            repo = fake.repos.get(m.group(1))
            rev, file = m.group(2), m.group(3)
            branch = self._branch_of(repo, rev) if repo else None
            if branch is None or file not in repo.branches[branch]:
                return self._error(404, "Entry not found")
            data = repo.branches[branch][file]
            headers = {"X-Repo-Commit": repo.heads[branch], "ETag": f'"{_git_oid(data)}"'}
            return self._send(200, raw=data, headers=headers, head=method == "HEAD")
        return self._error(404, f"fake hub: no route for {method} {path}")

    @staticmethod
    def _branch_of(repo: Repo, rev: str) -> str | None:
        if rev in repo.branches:
            return rev
        for name, sha in repo.heads.items():
            if sha == rev:
                return name
        return None

    def _api_model(self, method: str, repo_id: str, repo: Repo, rest: str, body: bytes) -> None:
        parts = rest.split("/", 1) if rest else [""]
        kind, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if method == "GET" and kind in ("", "revision"):
            branch = self._branch_of(repo, arg or "main")
            if branch is None:
                return self._error(404, "Revision not found")
            files = repo.branches[branch]
            return self._send(
                200,
                {
                    "id": repo_id,
                    "sha": repo.heads[branch],
                    "private": repo.private,
                    "siblings": [{"rfilename": f} for f in sorted(files)],
                },
            )
        if method == "POST" and kind == "branch":
            with self.fake._lock:
                if arg in repo.branches:
                    return self._error(409, "Reference already exists")
                repo.branches[arg] = dict(repo.branches["main"])
                repo.heads[arg] = repo.heads["main"]
            return self._send(200, {})
        if method == "GET" and kind == "tree":
            rev, _, prefix = arg.partition("/")
            branch = self._branch_of(repo, rev)
            if branch is None:
                return self._error(404, "Revision not found")
            entries = [
                {"type": "file", "path": p, "size": len(d), "oid": _git_oid(d)}
                for p, d in sorted(repo.branches[branch].items())
                if not prefix or p.startswith(prefix.rstrip("/") + "/")
            ]
            return self._send(200, entries)
        if method == "POST" and kind == "preupload":
            files = json.loads(body)["files"]
            return self._send(
                200,
                {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
            )
        if method == "POST" and kind == "commit":
            return self._commit(repo_id, repo, unquote(arg), body)
        return self._error(404, f"fake hub: no route for {method} /api/models/{repo_id}/{rest}")

    def _commit(self, repo_id: str, repo: Repo, branch: str, body: bytes) -> None:
        if self.fake.fail_commit:
            return self._error(500, "Internal Error (injected)")
        if branch not in repo.branches:
            return self._error(404, f"Invalid rev id: {branch}")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        new = dict(repo.branches[branch])
        header: dict[str, Any] = {}
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, "only base64 files are supported")
                new[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in new:
                    return self._error(404, "A file with this name doesn't exist")
                del new[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                doomed = [p for p in new if p.startswith(prefix)]
                if not doomed:
                    return self._error(404, "A file with this name doesn't exist")
                for p in doomed:
                    del new[p]
            else:
                return self._error(400, f"fake hub: unsupported commit operation {key!r}")
        oid = hashlib.sha1(repr(sorted(new.items())).encode() + str(len(repo.commits)).encode()).hexdigest()
        with self.fake._lock:
            repo.branches[branch] = new
            repo.heads[branch] = oid
            repo.commits.append({"branch": branch, "oid": oid, "summary": header.get("summary"), "files": sorted(new)})
        return self._send(
            200, {"commitUrl": f"{self.fake.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
        )


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
