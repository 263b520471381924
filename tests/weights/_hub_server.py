"""A Hugging Face hub on 127.0.0.1 for tests: enough of the API ``huggingface_hub`` uses to download.

- ``GET /api/models/{repo}/revision/{rev}``: ``{"id", "sha", "siblings": [{"rfilename"}]}``
  (snapshot_download)
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the file's sha256, as the hub gives
  for LFS files), ``Content-Length``; ``Range: bytes=N-`` answers 206 with ``Content-Range``
- ``GET /files/{name}``: plain files (URL weights such as torchvision's)
- a gated repository answers 401 with ``X-Error-Code: GatedRepo`` (the hub's answer without a token);
  a missing repository 401 ``RepoNotFound``, a missing file 404 ``EntryNotFound``
- ``truncate[path] = n``: the next n GETs of that file send the full Content-Length but only half the body,
  then close the connection (an interrupted download)

Every request is appended to ``log`` as (method, path).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    plain: dict[str, bytes] = field(default_factory=dict)
    truncate: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Hub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _error(self, code: int, error_code: str, message: str):
                data = json.dumps({"error": message}).encode()
                self.send_response(code)
                self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(data)

            def _answer(self, body: bool):
                hub.log.append((self.command, self.path))
                path = self.path.split("?", 1)[0]
                if path.startswith("/files/"):
                    name = path[len("/files/"):]
                    if name not in hub.plain:
                        return self._error(404, "EntryNotFound", f"{name} not found")
                    return self._send_file(name, hub.plain[name], {}, body)
                if path.startswith("/api/models/"):
                    rest = path[len("/api/models/"):]
                    repo_id, _, rev = rest.partition("/revision/")
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        return self._error(401, "RepoNotFound", f"Repository {repo_id} not found")
                    if repo.gated:
                        return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted")
                    data = json.dumps({"id": repo_id, "sha": repo.commit,
                                       "siblings": [{"rfilename": f} for f in repo.files]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if body:
                        self.wfile.write(data)
                    return None
                parts = path.lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "EntryNotFound", "unknown route")
                repo_id, file = "/".join(parts[:2]), "/".join(parts[4:])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(401, "RepoNotFound", f"Repository {repo_id} not found")
                if repo.gated:
                    return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted")
                if file not in repo.files:
                    return self._error(404, "EntryNotFound", f"{file} not found")
                return self._send_file(f"{repo_id}/{file}", repo.files[file], {"X-Repo-Commit": repo.commit},
                                       body)

            def _send_file(self, key: str, data: bytes, headers: dict, body: bool):
                etag = hashlib.sha256(data).hexdigest()
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[len("bytes="):-1])
                part = data[start:]
                self.send_response(206 if start else 200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(part)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if not body:
                    self.end_headers()
                    return
                if hub.truncate.get(key, 0) > 0:
                    hub.truncate[key] -= 1
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(part)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
