"""A local server that speaks the part of the Hugging Face Hub HTTP API that huggingface_hub 2.4 uses to create
a repo, commit files to it (inline NDJSON and LFS batch + PUT) and download them again.

Standard library only (plus PyYAML, which huggingface_hub itself depends on, to validate card metadata). It keeps
repos in memory as real commit histories: every commit is an immutable snapshot of paths to blobs, so revisions,
branches, PRs and the resolve headers behave like the Hub's. Requests are checked, not just accepted: bad tokens,
missing rights, private repos, malformed JSON/NDJSON bodies, unknown LFS objects and wrong hashes are refused
with the status codes and ``X-Error-Code`` headers the client maps to its own exceptions. Every request is
recorded in ``HubServer.requests`` and server-side exceptions in ``HubServer.errors``; routes the server does not
know are answered 404 and listed in ``HubServer.unknown_routes``, so a test can assert that the client used
nothing else.

Routes (``{repo}`` is ``namespace/name``, ``{rev}`` a branch, ``refs/pr/N`` or commit sha, URL-quoted):
    GET  /api/whoami-v2
    POST /api/repos/create                        DELETE /api/repos/delete
    POST /api/validate-yaml
    GET  /api/models/{repo}[/revision/{rev}]      model info: sha, private, siblings, cardData
    POST /api/models/{repo}/preupload/{rev}       upload mode per file ("regular" | "lfs") and remote oid
    POST /api/models/{repo}/commit/{rev}          NDJSON: header, file, lfsFile, deletedFile, deletedFolder
    GET  /api/models/{repo}/tree/{rev}[/{path}]   ?recursive=&expand=
    POST /api/models/{repo}/paths-info/{rev}      form: paths (repeated), expand
    GET  /api/models/{repo}/refs                  GET /api/models/{repo}/commits/{rev}
    POST /api/models/{repo}/branch/{branch}       JSON: startingPoint (optional)
    POST /{repo}.git/info/lfs/objects/batch       LFS batch API, "basic" transfer
    PUT  /lfs/upload/{ticket}                     POST /lfs/verify/{ticket}
    GET|HEAD /{repo}/resolve/{rev}/{path}         X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, Range
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

LFS_MIME = "application/vnd.git-lfs+json"
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REPO = rf"(?P<repo>{NAME}/{NAME})"
SHA1 = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
# What a new repo's .gitattributes sends to LFS, as on the Hub (abridged).
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.bin", "*.safetensors", "*.pt", "*.pth", "*.onnx", "*.h5", "*.msgpack", "*.zip", "*.gz")
)
MAX_REGULAR_SIZE = 10 * 1024 * 1024  # above this the Hub wants LFS whatever .gitattributes says


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports it for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubError(Exception):
    """An HTTP error answer: status, message, and the X-Error-Code the client dispatches on."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, body: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.body = headers or {}, body or {}


@dataclass(frozen=True)
class Blob:
    """One file in a commit. ``lfs_sha256`` is set for LFS files (their content lives in the LFS store)."""

    sha1: str  # git blob id (of the content, or of the LFS pointer)
    size: int
    lfs_sha256: str | None = None

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.sha1


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    author: str
    files: dict[str, Blob]
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    refs: dict[str, str] = field(default_factory=dict)  # branch or refs/pr/N -> commit sha
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        revision = unquote(revision)
        sha = self.refs.get(revision, revision if revision in self.commits else None)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[sha]

    def history(self, revision: str) -> Iterator[Commit]:
        commit: Commit | None = self.resolve(revision)
        while commit is not None:
            yield commit
            commit = self.commits.get(commit.parent) if commit.parent else None


class HubServer(ThreadingHTTPServer):
    """The Hub on 127.0.0.1 and a free port. ``tokens`` maps token -> (user, role) with role "read" or "write".

    ``inline_only=True`` makes preupload answer "regular" for every file, like a Hub that commits everything
    inline: the client then never needs LFS or Xet storage.
    """

    daemon_threads = True

    def __init__(self, tokens: dict[str, tuple[str, str]], inline_only: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.tokens = tokens
        self.inline_only = inline_only
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # git sha1 -> content of regular files
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.lfs_tickets: dict[str, tuple[str, int, str]] = {}  # ticket -> (sha256, size, repo_id)
        self.requests: list[tuple[str, str, int]] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.errors: list[str] = []  # server-side exceptions (bugs), answered 500
        self.lock = threading.RLock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request, client_address) -> None:
        """A client closing its keep-alive connection is normal; anything else is already in ``errors``."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()

    # State changes (called under self.lock) -----------------------------------------------------------------

    def create_repo(self, repo_id: str, owner: str, private: bool) -> Repo:
        repo = Repo(repo_id, owner, private)
        self.repos[repo_id] = repo
        self.commit(repo, "main", None, "initial commit", "", owner, {".gitattributes": GITATTRIBUTES.encode()}, {}, [])
        return repo

    def commit(
        self,
        repo: Repo,
        ref: str,
        base: Commit | None,
        title: str,
        message: str,
        author: str,
        files: dict[str, bytes],
        lfs_files: dict[str, tuple[str, int]],
        deletions: list[tuple[str, bool]],
    ) -> Commit:
        """Apply one commit on top of ``base`` and move ``ref`` to it: all of it or (on error) nothing."""
        tree = dict(base.files) if base else {}
        for path, is_folder in deletions:
            doomed = [p for p in tree if p.startswith(path.rstrip("/") + "/")] if is_folder else [path] * (path in tree)
            if not doomed:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del tree[p]
        for path, data in files.items():
            sha1 = git_blob_sha1(data)
            self.blobs[sha1] = data
            tree[path] = Blob(sha1, len(data))
        for path, (sha256, size) in lfs_files.items():
            tree[path] = Blob(git_blob_sha1(lfs_pointer(sha256, size)), size, sha256)
        seed = json.dumps([base.sha if base else None, title, sorted((p, b.sha1) for p, b in tree.items())])
        sha = hashlib.sha1(f"{seed}{time.time_ns()}".encode()).hexdigest()
        repo.commits[sha] = Commit(sha, base.sha if base else None, title, message, author, tree)
        repo.refs[ref] = sha
        return repo.commits[sha]

    def read(self, blob: Blob) -> bytes:
        return self.lfs_objects[blob.lfs_sha256] if blob.lfs_sha256 else self.blobs[blob.sha1]

    def add_folder(self, repo_id: str, folder, owner: str, private: bool = False) -> Commit:
        """Publish a local folder directly (server side), e.g. a base model the tests then load by id."""
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()
        }
        with self.lock:
            repo = self.create_repo(repo_id, owner, private)
            return self.commit(repo, "main", repo.resolve("main"), "add model", "", owner, files, {}, [])


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    ROUTES = [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("DELETE", r"/api/repos/delete", "delete_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?", "model_info"),
        ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
        ("POST", rf"/api/models/{REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("GET", rf"/api/models/{REPO}/refs", "refs"),
        ("GET", rf"/api/models/{REPO}/commits/(?P<rev>[^/]+)", "commits"),
        ("POST", rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)", "create_branch"),
        ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs/upload/(?P<ticket>[0-9a-f]+)", "lfs_upload"),
        ("POST", r"/lfs/verify/(?P<ticket>[0-9a-f]+)", "lfs_verify"),
        ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def log_message(self, format: str, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        status = 500
        try:
            body = self.read_body()
            for method, pattern, name in self.ROUTES:
                match = re.fullmatch(pattern, url.path)
                if method == self.command and match:
                    with self.server.lock:
                        status = getattr(self, f"route_{name}")(body, **match.groupdict())
                    break
            else:
                self.server.unknown_routes.append((self.command, url.path))
                raise HubError(404, f"Unknown route {self.command} {url.path}")
        except HubError as error:
            status = error.status
            headers = {"X-Error-Message": error.message, **error.headers}
            if error.code:
                headers["X-Error-Code"] = error.code
            self.send_json(error.status, {"error": error.message, **error.body}, headers)
        except Exception as error:  # a server bug: answer 500, say what, and let the test see it
            self.server.errors.append(f"{self.command} {url.path}: {type(error).__name__}: {error}")
            self.send_json(500, {"error": f"{type(error).__name__}: {error}"})
        finally:
            self.server.requests.append((self.command, url.path, status))

    # Plumbing -----------------------------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: int, payload, headers: dict | None = None) -> int:
        return self.send_bytes(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    def send_bytes(self, status: int, data: bytes, headers: dict | None = None) -> int:
        """Answer with ``data`` (only its length for HEAD), keeping the HTTP/1.1 connection usable."""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return status

    def json_body(self, body: bytes, content_type: str = "application/json") -> dict:
        if not self.headers.get("Content-Type", "").startswith(content_type):
            raise HubError(400, f"Expected Content-Type {content_type}, got {self.headers.get('Content-Type')!r}")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise HubError(400, f"Malformed JSON body: {error}") from None
        if not isinstance(payload, dict):
            raise HubError(400, "The JSON body must be an object")
        return payload

    def user(self, required: bool = False) -> tuple[str, str] | None:
        """(name, role) of the request's token; 401 for an unknown token, or for none when ``required``."""
        header = self.headers.get("Authorization")
        if header is None:
            if required:
                raise HubError(401, "You must be authenticated to access this resource.")
            return None
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or token not in self.server.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.server.tokens[token]

    def repo(self, repo_id: str, write: bool = False) -> Repo:
        """The repo if the request may see it (and write to it): private repos only exist for their owner."""
        user = self.user(required=write)
        repo = self.server.repos.get(repo_id)
        if repo is None or (repo.private and (user is None or user[0] != repo.owner)):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and (user[0] != repo.owner or user[1] != "write"):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def repo_url(self, repo_id: str) -> str:
        return f"{self.server.url}/{repo_id}"

    # Routes -------------------------------------------------------------------------------------------------

    def route_whoami(self, body: bytes) -> int:
        name, role = self.user(required=True)
        return self.send_json(
            200,
            {"type": "user", "name": name, "orgs": [], "auth": {"type": "access_token", "accessToken": {"role": role}}},
        )

    def route_create_repo(self, body: bytes) -> int:
        name, role = self.user(required=True)
        payload = self.json_body(body)
        repo_name, namespace = payload.get("name"), payload.get("organization") or name
        if not isinstance(repo_name, str) or not re.fullmatch(NAME, repo_name) or not re.fullmatch(NAME, namespace):
            raise HubError(400, f"Invalid repo name {payload.get('name')!r}")
        if payload.get("type", "model") != "model":
            raise HubError(400, f"This server only hosts models, not {payload.get('type')!r}")
        visibility = payload.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise HubError(400, f"Invalid visibility {visibility!r}")
        if namespace != name or role != "write":
            raise HubError(403, f"You don't have the rights to create a model under the namespace {namespace!r}")
        repo_id = f"{namespace}/{repo_name}"
        if repo_id in self.server.repos:
            raise HubError(409, "You already created this model repo", body={"url": self.repo_url(repo_id)})
        self.server.create_repo(repo_id, name, visibility == "private")
        return self.send_json(200, {"url": self.repo_url(repo_id), "name": repo_id})

    def route_delete_repo(self, body: bytes) -> int:
        payload = self.json_body(body)
        repo = self.repo(
            f"{payload.get('organization') or self.user(required=True)[0]}/{payload.get('name')}", write=True
        )
        del self.server.repos[repo.repo_id]
        return self.send_json(200, {})

    def route_validate_yaml(self, body: bytes) -> int:
        self.user()
        payload = self.json_body(body)
        if not isinstance(payload.get("content"), str) or payload.get("repoType") not in ("model", "dataset", "space"):
            raise HubError(400, "validate-yaml needs a string 'content' and a 'repoType'")
        errors = [{"message": message} for message in card_metadata_errors(payload["content"])]
        return self.send_json(400 if errors else 200, {"errors": errors, "warnings": []})

    def route_model_info(self, body: bytes, repo: str, rev: str | None) -> int:
        model = self.repo(repo)
        commit = model.resolve(rev or "main")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if self.query.get("blobs") in ("1", "true", "True"):
                sibling.update(size=blob.size, blobId=blob.sha1)
                if blob.lfs_sha256:
                    sibling["lfs"] = {
                        "sha256": blob.lfs_sha256,
                        "size": blob.size,
                        "pointerSize": len(lfs_pointer(blob.lfs_sha256, blob.size)),
                    }
            siblings.append(sibling)
        card = self.server.blobs.get(commit.files["README.md"].sha1) if "README.md" in commit.files else None
        card_data = parse_front_matter(card.decode()) if card else None
        info = {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": model.owner,
            "sha": commit.sha,
            "lastModified": commit.date,
            "private": model.private,
            "disabled": False,
            "gated": False,
            "tags": (card_data or {}).get("tags", []),
            "library_name": (card_data or {}).get("library_name"),
            "pipeline_tag": (card_data or {}).get("pipeline_tag"),
            "siblings": siblings,
            "downloads": 0,
            "likes": 0,
        }
        if card_data is not None:
            info["cardData"] = card_data
        return self.send_json(200, info)

    def route_preupload(self, body: bytes, repo: str, rev: str) -> int:
        model = self.repo(repo, write=True)
        commit = model.resolve(rev)  # a pull request is opened against rev too
        files = self.json_body(body).get("files")
        if not isinstance(files, list) or not files:
            raise HubError(400, "'files' must be a non-empty list")
        attributes = (
            self.server.read(commit.files[".gitattributes"]).decode() if ".gitattributes" in commit.files else ""
        )
        lfs_patterns = [line.split()[0] for line in attributes.splitlines() if "filter=lfs" in line]
        answer = []
        for entry in files:
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("path"), str)
                and isinstance(entry.get("size"), int)
                and isinstance(entry.get("sample"), str)
                and entry["size"] >= 0
            ):
                raise HubError(
                    400, f"Malformed preupload entry {entry!r}: needs path (str), size (int), sample (base64)"
                )
            check_path(entry["path"])
            try:
                base64.b64decode(entry["sample"], validate=True)
            except binascii.Error:
                raise HubError(400, f"'sample' of {entry['path']} is not base64") from None
            big = entry["size"] > MAX_REGULAR_SIZE or any(
                fnmatch.fnmatch(entry["path"].rsplit("/", 1)[-1], p) for p in lfs_patterns
            )
            mode = "regular" if self.server.inline_only or not big else "lfs"
            remote = commit.files.get(entry["path"])
            oid = None if remote is None else (remote.lfs_sha256 if mode == "lfs" else remote.sha1)
            answer.append({"path": entry["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return self.send_json(200, {"files": answer, "commitOid": commit.sha})

    def route_commit(self, body: bytes, repo: str, rev: str) -> int:
        model = self.repo(repo, write=True)
        if not self.headers.get("Content-Type", "").startswith("application/x-ndjson"):
            raise HubError(400, "The commit body must be application/x-ndjson")
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise HubError(400, f"Malformed NDJSON line: {error}") from None
        if not lines or not isinstance(lines[0], dict) or lines[0].get("key") != "header":
            raise HubError(400, "The first NDJSON line must be the header")
        header = lines[0].get("value")
        if not isinstance(header, dict) or not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise HubError(400, "The commit header needs a non-empty 'summary'")
        create_pr = self.query.get("create_pr") == "1"
        base = model.resolve(rev)
        if header.get("parentCommit") not in (None, base.sha):
            raise HubError(412, f"A commit has happened since {header['parentCommit']}: parent is {base.sha}")
        files, lfs_files, deletions = {}, {}, []
        for line in lines[1:]:
            key, value = (line.get("key"), line.get("value")) if isinstance(line, dict) else (None, None)
            if not isinstance(value, dict) or not isinstance(value.get("path"), str):
                raise HubError(400, f"Malformed commit operation {line!r}")
            path = check_path(value["path"])
            if key == "file":
                if value.get("encoding") != "base64" or not isinstance(value.get("content"), str):
                    raise HubError(400, f"File {path} must carry base64 'content' with encoding 'base64'")
                try:
                    files[path] = base64.b64decode(value["content"], validate=True)
                except binascii.Error:
                    raise HubError(400, f"Content of {path} is not valid base64") from None
            elif key == "lfsFile":
                oid, size = value.get("oid"), value.get("size")
                if value.get("algo") != "sha256" or not isinstance(oid, str) or not SHA256.fullmatch(oid):
                    raise HubError(400, f"LFS file {path} needs algo 'sha256' and a sha256 oid")
                stored = self.server.lfs_objects.get(oid)
                if stored is None:
                    raise HubError(400, f"LFS object {oid} of {path} was never uploaded")
                if size is not None and size != len(stored):
                    raise HubError(400, f"LFS file {path}: size {size} but the object has {len(stored)} bytes")
                lfs_files[path] = (oid, len(stored))
            elif key in ("deletedFile", "deletedFolder"):
                deletions.append((path, key == "deletedFolder"))
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        if not (files or lfs_files or deletions):
            raise HubError(400, "The commit has no operations")
        if create_pr:
            ref = f"refs/pr/{1 + sum(r.startswith('refs/pr/') for r in model.refs)}"
        else:
            ref = unquote(rev)
            if ref not in model.refs:
                raise HubError(400, f"Cannot commit to {ref}: not a branch")
        author = self.user(required=True)[0]
        commit = self.server.commit(
            model, ref, base, header["summary"], header.get("description", ""), author, files, lfs_files, deletions
        )
        answer = {"success": True, "commitOid": commit.sha, "commitUrl": f"{self.repo_url(repo)}/commit/{commit.sha}"}
        if create_pr:
            answer["pullRequestUrl"] = f"{self.repo_url(repo)}/discussions/{ref.rsplit('/', 1)[1]}"
        return self.send_json(200, answer)

    def tree_entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict]:
        entries, folders = [], set()
        for path, blob in sorted(commit.files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            if "/" in rest:
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1 if recursive else 2):
                    folders.add("/".join(filter(None, [prefix, *parts[:depth]])))
                if not recursive:
                    continue
            entries.append(file_entry(path, blob))
        entries += [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
        ]
        return entries

    def route_tree(self, body: bytes, repo: str, rev: str, path: str | None) -> int:
        commit = self.repo(repo).resolve(rev)
        prefix = unquote(path or "").strip("/")
        recursive = self.query.get("recursive") in ("True", "true", "1")
        if prefix and prefix in commit.files:
            raise HubError(400, f"{prefix} is a file, not a folder")
        entries = self.tree_entries(commit, prefix, recursive)
        if prefix and not entries:
            raise HubError(404, f"{prefix} does not exist in {rev}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        return self.send_json(200, entries)

    def route_paths_info(self, body: bytes, repo: str, rev: str) -> int:
        commit = self.repo(repo).resolve(rev)
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            raise HubError(400, "paths-info takes a form body")
        paths = parse_qs(body.decode()).get("paths")
        if not paths:
            raise HubError(400, "paths-info needs at least one 'paths' field")
        answer = []
        for path in paths:
            if path in commit.files:
                answer.append(file_entry(path, commit.files[path]))
            elif any(p.startswith(path.rstrip("/") + "/") for p in commit.files):
                answer.append(
                    {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
                )
        return self.send_json(200, answer)

    def route_refs(self, body: bytes, repo: str) -> int:
        model = self.repo(repo)
        branches = [
            {"name": r, "ref": f"refs/heads/{r}", "targetCommit": s}
            for r, s in model.refs.items()
            if not r.startswith("refs/")
        ]
        answer = {"branches": branches, "tags": [], "converts": []}
        if self.query.get("include_prs") in ("1", "true", "True"):
            answer["pullRequests"] = [
                {"name": r, "ref": r, "targetCommit": s} for r, s in model.refs.items() if r.startswith("refs/pr/")
            ]
        return self.send_json(200, answer)

    def route_commits(self, body: bytes, repo: str, rev: str) -> int:
        commits = [
            {"id": c.sha, "title": c.title, "message": c.message, "authors": [{"user": c.author}], "date": c.date}
            for c in self.repo(repo).history(rev)
        ]
        return self.send_json(200, commits)

    def route_create_branch(self, body: bytes, repo: str, branch: str) -> int:
        model = self.repo(repo, write=True)
        branch = unquote(branch)
        start = self.json_body(body).get("startingPoint")
        if branch in model.refs:
            raise HubError(409, f"Branch {branch} already exists")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) or branch.startswith("refs/"):
            raise HubError(400, f"Invalid branch name {branch!r}")
        model.refs[branch] = model.resolve(start if isinstance(start, str) else "main").sha
        return self.send_json(200, {})

    def route_lfs_batch(self, body: bytes, repo: str) -> int:
        model = self.repo(repo, write=True)
        if self.headers.get("Accept") != LFS_MIME:
            raise HubError(400, f"The LFS batch API needs Accept: {LFS_MIME}")
        payload = self.json_body(body, LFS_MIME)
        objects = payload.get("objects")
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", []):
            raise HubError(400, "Only the 'upload' operation with the 'basic' transfer is supported")
        if payload.get("hash_algo", "sha256") != "sha256" or not isinstance(objects, list) or not objects:
            raise HubError(400, "'objects' must be a non-empty list of sha256 objects")
        answer = []
        for obj in objects:
            if not (
                isinstance(obj, dict)
                and isinstance(obj.get("oid"), str)
                and SHA256.fullmatch(obj["oid"])
                and isinstance(obj.get("size"), int)
                and obj["size"] >= 0
            ):
                raise HubError(400, f"Malformed LFS object {obj!r}")
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.server.lfs_objects:
                ticket = secrets.token_hex(16)
                self.server.lfs_tickets[ticket] = (obj["oid"], obj["size"], model.repo_id)
                entry["actions"] = {
                    "upload": {"href": f"{self.server.url}/lfs/upload/{ticket}", "header": {}},
                    "verify": {"href": f"{self.server.url}/lfs/verify/{ticket}", "header": {}},
                }
            answer.append(entry)
        return self.send_bytes(
            200, json.dumps({"transfer": "basic", "objects": answer}).encode(), {"Content-Type": LFS_MIME}
        )

    def route_lfs_upload(self, body: bytes, ticket: str) -> int:
        """The pre-signed upload URL: the ticket is the credential, so no token is needed (as with S3)."""
        if ticket not in self.server.lfs_tickets:
            raise HubError(403, "Unknown or used upload ticket")
        oid, size, _ = self.server.lfs_tickets[ticket]
        if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match oid {oid} and size {size}")
        self.server.lfs_objects[oid] = body
        return self.send_bytes(200, b"")

    def route_lfs_verify(self, body: bytes, ticket: str) -> int:
        if ticket not in self.server.lfs_tickets:
            raise HubError(403, "Unknown upload ticket")
        oid, size, repo_id = self.server.lfs_tickets.pop(ticket)
        self.repo(repo_id, write=True)
        payload = self.json_body(body)
        if payload.get("oid") != oid or payload.get("size") != size or oid not in self.server.lfs_objects:
            raise HubError(400, f"Verification failed for {oid}")
        return self.send_json(200, {})

    def route_resolve(self, body: bytes, repo: str, rev: str, path: str) -> int:
        commit = self.repo(repo).resolve(rev)
        path = unquote(path)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        data = self.server.read(blob)
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{blob.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs_sha256:
            headers.update({"X-Linked-Etag": f'"{blob.lfs_sha256}"', "X-Linked-Size": blob.size})
        status = 200
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged and self.command == "GET":
            start, end = int(ranged[1]), int(ranged[2]) if ranged[2] else len(data) - 1
            if start >= len(data):
                raise HubError(
                    416,
                    f"Range {self.headers['Range']} outside {len(data)} bytes",
                    headers={"Content-Range": f"bytes */{len(data)}"},
                )
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        return self.send_bytes(status, data, headers)


def check_path(path: str) -> str:
    """A path a commit may use: relative, normalised, no ``.git`` folder."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def file_entry(path: str, blob: Blob) -> dict:
    entry = {"type": "file", "oid": blob.sha1, "size": blob.size, "path": path}
    if blob.lfs_sha256:
        entry["lfs"] = {
            "oid": blob.lfs_sha256,
            "size": blob.size,
            "pointerSize": len(lfs_pointer(blob.lfs_sha256, blob.size)),
        }
    return entry


def parse_front_matter(content: str) -> dict | None:
    """The YAML metadata block at the top of a card, or None when there is none; HubError if it is invalid."""
    match = re.match(r"^---\s*\n(.*?\n)?---\s*(\n|$)", content, re.DOTALL)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match[1] or "")
    except yaml.YAMLError as error:
        raise HubError(400, f"Invalid YAML in card metadata: {error}") from None
    if data is not None and not isinstance(data, dict):
        raise HubError(400, "Card metadata must be a YAML mapping")
    return data or {}


def card_metadata_errors(content: str) -> list[str]:
    """What the Hub would refuse in a model card's metadata (types of the fields it indexes)."""
    try:
        data = parse_front_matter(content) or {}
    except HubError as error:
        return [error.message]
    errors = []
    for key in ("library_name", "pipeline_tag", "license"):
        if key in data and not isinstance(data[key], str):
            errors.append(f'"{key}" must be a string')
    for key in ("tags", "language", "base_model", "datasets"):
        value = data.get(key)
        if value is not None and not (
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            errors.append(f'"{key}" must be a string or a list of strings')
    return errors


@pytest.fixture
def hub_server(request) -> Iterator[HubServer]:
    """A fresh local Hub with users ``alice`` (write), ``bob`` (write) and ``reader`` (read-only); use
    ``@pytest.mark.parametrize("hub_server", [True], indirect=True)`` for an inline-only server."""
    tokens = {"hf_alice_write": ("alice", "write"), "hf_bob_write": ("bob", "write"), "hf_reader": ("reader", "read")}
    with HubServer(tokens, inline_only=getattr(request, "param", False)) as server:
        yield server
