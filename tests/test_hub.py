"""Publishing to the Hub, end to end, against the local Hub server of ``hub_server.py``.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET when it is imported, and this test
process runs offline, so everything that talks to the server runs in a subprocess with its own environment and
HF_HOME. The subprocesses are few and run side by side where they can (importing sentence-transformers costs
seconds): one pushes over LFS with ``HF_HUB_DISABLE_XET=1`` (``scripts/push_to_hub.py``, then more ``st-gp push``
runs in the same interpreter), one pushes with Xet on to a server that has every file committed inline, two check
the failures as real command lines, and two load the result back (the second offline).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import SENTENCES
from hub_server import HubServer, git_blob_sha1, hub_server  # noqa: F401  (hub_server is a fixture)
from huggingface_hub import ModelCard

from st_generalized_pooling import GeneralizedPoolingError, convert, save_model
from st_generalized_pooling.hub import build_upload_folder, prepare
from st_generalized_pooling.loading import package_version

ROOT = Path(__file__).resolve().parents[1]
TOKENS = {"hf_alice_write": ("alice", "write"), "hf_bob_write": ("bob", "write"), "hf_org_write": ("org", "write")}
BASE_ID = "org/tiny-distiluse"
REPO = "alice/tiny-mhgp"
PRIVATE_REPO = "alice/tiny-mhgp-private"
CONVERT = ["--model", BASE_ID, "--num-heads", "4"]
BASE_CARD = """---
language:
- multilingual
- ar
- de
- en
- fr
- ja
- ru
- zh
license: apache-2.0
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
---

# tiny-distiluse

A tiny stand-in for distiluse-base-multilingual-cased-v2.
"""

# Run before anything else in a subprocess: makes `import st_generalized_pooling` fail, however it is installed.
HIDE_PACKAGE = """
import importlib.abc, sys
class HidePackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "st_generalized_pooling":
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
sys.meta_path.insert(0, HidePackage())
try:
    import st_generalized_pooling
    raise SystemExit("st_generalized_pooling is still importable")
except ModuleNotFoundError:
    pass
"""

# Runs push steps in one interpreter: [name, "script" | "cli", argv]; writes exit code, stdout, stderr of each.
PUSH_DRIVER = """
import contextlib, io, json, runpy, sys
from huggingface_hub import constants
from st_generalized_pooling.cli import main
steps, out, script = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
results = {"xet_disabled": constants.HF_HUB_DISABLE_XET}
for name, kind, argv in steps:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            if kind == "script":
                sys.argv = ["push_to_hub.py", *argv]
                runpy.run_path(script, run_name="__main__")
                code = 0
            else:
                code = main(["push", *argv])
        except SystemExit as exit:
            code = exit.code
    results[name] = {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
json.dump(results, open(out, "w"))
"""

# Loads the repo three ways in one interpreter, in this order: with the package hidden, through
# SentenceTransformer(repo, trust_remote_code=True) (the flag is all the repo's generalized_pooling.py needs);
# then, with the package back, through load_model; then as each user, to see which can see the private repo.
LOAD = """
import json, sys
from sentence_transformers import SentenceTransformer
repo, private_repo, sentences, out, cache = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
model = SentenceTransformer(repo, trust_remote_code=True, device="cpu")
result = {"remote_code": {"embeddings": model.encode(sentences).tolist(), "pooling_module": type(model[1]).__module__,
                          "package_loaded": any(name.startswith("st_generalized_pooling") for name in sys.modules)}}
sys.meta_path.remove(next(finder for finder in sys.meta_path if type(finder).__name__ == "HidePackage"))
from st_generalized_pooling import load_model
model = load_model(repo, device="cpu")
result["load_model"] = {"embeddings": model.encode(sentences).tolist(), "pooling_module": type(model[1]).__module__}
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError
result["visibility"] = {}
for who, token in [("alice", "hf_alice_write"), ("bob", "hf_bob_write"), ("anonymous", False)]:
    try:
        info = HfApi().model_info(private_repo, token=token)
        hf_hub_download(private_repo, "modules.json", token=token, cache_dir=cache)
        result["visibility"][who] = {"private": info.private}
    except RepositoryNotFoundError:
        result["visibility"][who] = None
json.dump(result, open(out, "w"))
"""

# Loads again from the cache the first load filled, offline, with the package hidden.
LOAD_OFFLINE = """
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], trust_remote_code=True, device="cpu")
json.dump({"embeddings": model.encode(json.loads(sys.argv[2])).tolist()}, open(sys.argv[3], "w"))
"""


def hub_env(
    server: HubServer, home: Path, token: str | None = "hf_alice_write", xet: bool = False, offline: bool = False
) -> dict[str, str]:
    """A subprocess environment that talks to ``server`` only, with its own cache and no inherited HF_* setting."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_ENDPOINT=server.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", TRANSFORMERS_VERBOSITY="error")
    if token:
        env["HF_TOKEN"] = token
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=240)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def finish_json(process: subprocess.Popen, path: Path) -> dict:
    result = finish(process)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(path.read_text())


def push_driver(steps: list, out: Path) -> list[str]:
    return ["-c", PUSH_DRIVER, json.dumps(steps), str(out), str(ROOT / "scripts" / "push_to_hub.py")]


def read_folder(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_commit(server: HubServer, repo_id: str, revision: str) -> dict[str, bytes]:
    """What the server holds at a revision, without .gitattributes (the Hub's, not the model's)."""
    commit = server.repos[repo_id].resolve(revision)
    return {path: server.read(blob) for path, blob in commit.files.items() if path != ".gitattributes"}


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not progress bars (tqdm redraws with carriage returns)."""
    return [line for line in stderr.split("\n") if line.strip() and "\r" not in line]


@pytest.fixture(scope="module")
def published(distil_model, tmp_path_factory):
    """Push the tiny converted distiluse stand-in every way the tests need, then load it back.

    The base model is on both servers as ``org/tiny-distiluse``, with a card like distiluse's; the pushes convert
    it on the fly (4 heads). Phase 1 runs side by side: over LFS, the pushes to REPO (dry run, the script, the
    same again, a changed model) then to the private repo (created private, a pull request on a new branch, a
    push without permission); the Xet push to the inline-only server; the two failures. Phase 2 loads REPO back;
    phase 3 loads it offline.
    """
    tmp = tmp_path_factory.mktemp("hub")
    source = (ROOT / "st_generalized_pooling" / "pooling.py").read_bytes()  # what the pushes publish
    base_dir = tmp / "base"
    distil_model.save(str(base_dir))
    (base_dir / "README.md").write_text(BASE_CARD, encoding="utf-8")
    (tmp / "cwd").mkdir()  # subprocesses run here, so nothing is imported from the working directory
    with HubServer(TOKENS) as lfs, HubServer(TOKENS, inline_only=True) as inline:
        for server in (lfs, inline):
            server.add_folder(BASE_ID, base_dir, owner="org")
        lfs_steps = [
            ["dry_run", "cli", [*CONVERT, "--repo-id", REPO, "--dry-run", str(tmp / "dry")]],
            ["first", "script", [*CONVERT, "--repo-id", REPO, "--commit-message", "first push"]],
            ["same_again", "cli", [*CONVERT, "--repo-id", REPO]],
            ["second", "cli", [*CONVERT, "--repo-id", REPO, "--seed", "1", "--commit-message", "second push"]],
            ["private_on_public", "cli", [*CONVERT, "--repo-id", REPO, "--seed", "2", "--private"]],
            ["private", "cli", [*CONVERT, "--repo-id", PRIVATE_REPO, "--private"]],
            ["pr", "cli", [*CONVERT, "--repo-id", PRIVATE_REPO, "--seed", "1", "--revision", "dev", "--create-pr"]],
            ["no_permission", "cli", [*CONVERT, "--repo-id", PRIVATE_REPO, "--token", "hf_bob_write"]],
        ]
        cli = ["-m", "st_generalized_pooling.cli", "push", *CONVERT, "--repo-id", REPO]
        phase1 = {
            "lfs": start(push_driver(lfs_steps, tmp / "lfs.json"), hub_env(lfs, tmp / "home-lfs"), ROOT),
            "inline": start(
                push_driver([["first", "cli", [*CONVERT, "--repo-id", REPO]]], tmp / "inline.json"),
                hub_env(inline, tmp / "home-inline", xet=True),
                ROOT,
            ),
            "wrong_token": start(cli, hub_env(lfs, tmp / "home-wrong", token="hf_not_a_token"), tmp / "cwd"),
            "unreachable": start(
                cli, {**hub_env(lfs, tmp / "home-down"), "HF_ENDPOINT": "http://127.0.0.1:9"}, tmp / "cwd"
            ),
        }
        result = {name: finish_json(phase1[name], tmp / f"{name}.json") for name in ("lfs", "inline")}
        result.update(wrong_token=finish(phase1["wrong_token"]), unreachable=finish(phase1["unreachable"]))
        assert result["lfs"]["second"]["code"] == 0, result["lfs"]["second"]

        sentences = json.dumps(SENTENCES)
        load = start(
            [
                "-I",
                "-c",
                HIDE_PACKAGE + LOAD,
                REPO,
                PRIVATE_REPO,
                sentences,
                str(tmp / "load.json"),
                str(tmp / "home-seen"),
            ],
            hub_env(lfs, tmp / "home-load", token=None),
            tmp / "cwd",
        )
        result.update(finish_json(load, tmp / "load.json"))
        offline = start(
            ["-I", "-c", HIDE_PACKAGE + LOAD_OFFLINE, REPO, sentences, str(tmp / "offline.json")],
            hub_env(lfs, tmp / "home-load", token=None, offline=True),
            tmp / "cwd",
        )
        lfs.shutdown()  # offline means offline: the server is not even there
        result["offline"] = finish_json(offline, tmp / "offline.json")
        yield {"tmp": tmp, "lfs_server": lfs, "inline_server": inline, "source": source, **result}


def expected_embeddings(distil_model, seed: int) -> np.ndarray:
    return convert(distil_model, num_heads=4, seed=seed).encode(SENTENCES)


def test_dry_run_writes_exactly_what_is_uploaded(published):
    steps, lfs = published["lfs"], published["lfs_server"]
    assert steps["dry_run"]["code"] == 0 and "nothing uploaded" in steps["dry_run"]["stdout"]
    first = next(c for c in lfs.repos[REPO].history("main") if c.title == "first push")
    dry = read_folder(published["tmp"] / "dry")
    assert read_commit(lfs, REPO, first.sha) == dry
    assert all(name in steps["dry_run"]["stdout"] for name in dry)


def test_repo_holds_a_self_contained_model_with_safetensors_and_the_package_version(published):
    files = read_folder(published["tmp"] / "dry")
    assert {
        "modules.json",
        "config_sentence_transformers.json",
        "generalized_pooling.py",
        "README.md",
        "model.safetensors",
        "1_MultiHeadGeneralizedPooling/model.safetensors",
        "2_Dense/model.safetensors",
        "1_MultiHeadGeneralizedPooling/config.json",
        "2_Dense/config.json",
        "tokenizer.json",
    } <= set(files)
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert files["generalized_pooling.py"] == published["source"]  # the package's own module
    assert json.loads(files["modules.json"])[1]["type"] == "generalized_pooling.MultiHeadGeneralizedPooling"
    config = json.loads(files["config_sentence_transformers.json"])
    assert config["__version__"]["st-generalized-pooling"] == package_version()


def test_card_metadata_parses_with_the_hub_fields(published):
    card = ModelCard(read_commit(published["lfs_server"], REPO, "main")["README.md"].decode())
    data = card.data
    assert data.library_name == "sentence-transformers" and data.pipeline_tag == "sentence-similarity"
    assert {"sentence-transformers", "feature-extraction", "generalized-pooling"} <= set(data.tags)
    assert data.base_model == BASE_ID
    assert data.license == "apache-2.0"  # read from the base model's own card on the Hub
    assert data.language == ["multilingual", "ar", "de", "en", "fr", "ja", "ru", "zh"]
    assert f'SentenceTransformer("{REPO}", trust_remote_code=True)' in card.text


def test_lfs_upload_path_sends_weights_through_lfs_batch_and_put(published):
    lfs = published["lfs_server"]
    assert published["lfs"]["xet_disabled"] is True
    commit = lfs.repos[REPO].resolve("main")
    assert {path for path, blob in commit.files.items() if blob.lfs_sha256} == {
        "model.safetensors",
        "1_MultiHeadGeneralizedPooling/model.safetensors",
        "2_Dense/model.safetensors",
    }
    assert ("POST", f"/{REPO}.git/info/lfs/objects/batch", 200) in lfs.requests
    assert any(
        method == "PUT" and path.startswith("/lfs/upload/") and status == 200 for method, path, status in lfs.requests
    )
    assert lfs.unknown_routes == [] and lfs.errors == []


def test_xet_upload_path_with_every_file_inline(published):
    inline, steps = published["inline_server"], published["inline"]
    assert steps["xet_disabled"] is False and steps["first"]["code"] == 0, steps["first"]
    commit = inline.repos[REPO].resolve("main")
    assert not any(blob.lfs_sha256 for blob in commit.files.values())
    assert not [path for _, path, _ in inline.requests if "lfs" in path or "xet" in path]
    assert inline.unknown_routes == [] and inline.errors == []
    assert read_commit(inline, REPO, "main") == read_folder(published["tmp"] / "dry")


def test_each_push_is_one_commit_and_a_second_push_adds_one(published):
    steps, repo = published["lfs"], published["lfs_server"].repos[REPO]
    history = list(repo.history("main"))
    assert [commit.title for commit in history] == ["second push", "first push", "initial commit"]
    assert steps["same_again"]["code"] == 0 and "no new commit" in steps["same_again"]["stdout"]
    assert steps["second"]["code"] == 0 and history[0].sha in steps["second"]["stdout"]
    changed = {path for path in history[0].files if history[0].files[path] != history[1].files[path]}
    assert changed == {"1_MultiHeadGeneralizedPooling/model.safetensors", "README.md"}  # W1 and the card's seed


def test_pull_request_on_a_new_branch(published):
    repo = published["lfs_server"].repos[PRIVATE_REPO]
    assert published["lfs"]["pr"]["code"] == 0, published["lfs"]["pr"]
    main, pr = repo.resolve("main"), repo.resolve("refs/pr/1")
    assert repo.resolve("dev").sha == main.sha == pr.parent  # dev made from main, the PR opened against dev
    assert "/discussions/1" in published["lfs"]["pr"]["stdout"]


def test_loads_by_repo_id_without_the_package(published, distil_model):
    result = published["remote_code"]
    assert not result["package_loaded"]
    assert result["pooling_module"].startswith("transformers_modules.")  # the repo's generalized_pooling.py
    assert np.abs(np.array(result["embeddings"]) - expected_embeddings(distil_model, seed=1)).max() <= 1e-6


def test_loads_with_load_model(published, distil_model):
    result = published["load_model"]
    assert result["pooling_module"] == "st_generalized_pooling.pooling"  # the package's class, not the repo's
    assert np.abs(np.array(result["embeddings"]) - expected_embeddings(distil_model, seed=1)).max() <= 1e-6


def test_loads_from_the_cache_offline(published):
    offline, online = np.array(published["offline"]["embeddings"]), np.array(published["remote_code"]["embeddings"])
    assert np.abs(offline - online).max() == 0


def test_private_repo_is_invisible_to_other_tokens(published):
    assert published["lfs"]["private"]["code"] == 0
    assert published["lfs_server"].repos[PRIVATE_REPO].private
    assert published["visibility"] == {"alice": {"private": True}, "bob": None, "anonymous": None}


def test_private_push_to_a_public_repo_is_refused(published):
    step = published["lfs"]["private_on_public"]
    assert step["code"] == 2 and error_lines(step["stderr"])[-1].endswith("push without --private.")
    assert len(error_lines(step["stderr"])) == 1  # and nothing uploaded: see the history test


def test_tokens_are_never_printed(published):
    outputs = [
        step["stdout"] + step["stderr"]
        for run in ("lfs", "inline")
        for step in published[run].values()
        if isinstance(step, dict)
    ]
    outputs += [published[run].stdout + published[run].stderr for run in ("wrong_token", "unreachable")]
    assert len(outputs) == 11 and not [text for text in outputs for token in TOKENS if token in text]


def test_wrong_token_fails_with_one_line(published):
    result = published["wrong_token"]
    assert result.returncode == 2 and result.stdout == ""
    assert error_lines(result.stderr) == [result.stderr.strip()] and "rejected the token" in result.stderr
    assert "hf_not_a_token" not in result.stderr


def test_unreachable_endpoint_fails_with_one_line(published):
    result = published["unreachable"]
    assert result.returncode == 2 and error_lines(result.stderr) == [result.stderr.strip()]
    assert "Cannot reach the Hub at http://127.0.0.1:9" in result.stderr


def test_missing_permission_fails_with_one_line(published):
    step = published["lfs"]["no_permission"]
    lines = error_lines(step["stderr"])
    assert step["code"] == 2 and len(lines) == 1 and "403" in lines[0] and "Traceback" not in step["stderr"]
    assert "hf_bob_write" not in step["stderr"] + step["stdout"]


def test_an_already_converted_model_is_published_as_it_is(distil_model, tmp_path):
    distil_model.save(str(tmp_path / "base"))
    tuned = convert(distil_model, num_heads=4, seed=3)
    pooling = tuned[1]
    with torch.no_grad():
        pooling.w2.normal_(0, 0.1)  # stands in for fine-tuning
    pooling.training_details = {"loss": "CoSENTLoss", "epochs": 1}
    save_model(tuned, tmp_path / "tuned", create_model_card=False)
    with pytest.raises(GeneralizedPoolingError, match="--base-model"):
        prepare(str(tmp_path / "tuned"))  # its card names no base model to measure against
    prepared = prepare(str(tmp_path / "tuned"), base_model=str(tmp_path / "base"))
    assert not prepared.converted and prepared.base_model is None  # a folder is no Hub id for the metadata
    build_upload_folder(prepared, tmp_path / "upload", "alice/tuned")
    weights = "1_MultiHeadGeneralizedPooling/model.safetensors"
    assert (tmp_path / "upload" / weights).read_bytes() == (tmp_path / "tuned" / weights).read_bytes()
    text = (tmp_path / "upload" / "README.md").read_text(encoding="utf-8")
    assert "published as it was given" in text and "**loss:** CoSENTLoss" in text
    assert ModelCard(text).data.base_model is None


# The server checks the protocol: what a client sends wrong is refused, not accepted.


def request(
    server: HubServer,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = "hf_alice_write",
    content_type: str = "application/json",
    headers: dict | None = None,
) -> tuple[int, dict]:
    headers = {"Content-Type": content_type, **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(server.url + path, body, headers, method=method)) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def ndjson(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_server_refuses_bad_tokens_and_rights(hub_server):
    assert request(hub_server, "GET", "/api/whoami-v2", token="nope")[0] == 401
    assert request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}', token=None)[0] == 401
    assert request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}', token="hf_reader")[0] == 403
    assert request(hub_server, "POST", "/api/repos/create", b'{"name": "m", "organization": "bob"}')[0] == 403
    assert request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}')[0] == 200
    status, answer = request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}')
    assert status == 409 and answer["url"].endswith("/alice/m")
    assert (
        request(hub_server, "POST", "/api/models/alice/m/preupload/main", b'{"files": []}', token="hf_bob_write")[0]
        == 403
    )


def test_server_refuses_malformed_commits(hub_server):
    request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}')
    commit = "/api/models/alice/m/commit/main"
    header = {"key": "header", "value": {"summary": "s"}}
    file = {"key": "file", "value": {"path": "a.txt", "content": base64.b64encode(b"a").decode(), "encoding": "base64"}}
    nd = "application/x-ndjson"
    assert request(hub_server, "POST", commit, ndjson(header, file), content_type="application/json")[0] == 400
    assert request(hub_server, "POST", commit, b"{not json\n", content_type=nd)[0] == 400
    assert request(hub_server, "POST", commit, ndjson(file), content_type=nd)[0] == 400  # no header first
    assert (
        request(hub_server, "POST", commit, ndjson({"key": "header", "value": {"summary": ""}}, file), content_type=nd)[
            0
        ]
        == 400
    )
    bad_path = {"key": "file", "value": {**file["value"], "path": "../a.txt"}}
    assert request(hub_server, "POST", commit, ndjson(header, bad_path), content_type=nd)[0] == 400
    unknown_lfs = {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": "0" * 64, "size": 1}}
    assert request(hub_server, "POST", commit, ndjson(header, unknown_lfs), content_type=nd)[0] == 400
    assert hub_server.repos["alice/m"].resolve("main").title == "initial commit"  # nothing half applied
    status, answer = request(hub_server, "POST", commit, ndjson(header, file), content_type=nd)
    assert status == 200 and hub_server.repos["alice/m"].resolve("main").files["a.txt"].sha1 == git_blob_sha1(b"a")


def test_server_checks_lfs_uploads(hub_server):
    request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}')
    data = b"weights" * 100
    oid = hashlib.sha256(data).hexdigest()
    batch = "/alice/m.git/info/lfs/objects/batch"
    lfs = "application/vnd.git-lfs+json"
    body = json.dumps(
        {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}
    ).encode()
    assert request(hub_server, "POST", batch, body, content_type=lfs)[0] == 400  # no LFS Accept header
    malformed = json.dumps(
        {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "xyz", "size": 1}]}
    ).encode()
    assert request(hub_server, "POST", batch, malformed, content_type=lfs, headers={"Accept": lfs})[0] == 400
    status, answer = request(hub_server, "POST", batch, body, content_type=lfs, headers={"Accept": lfs})
    href = answer["objects"][0]["actions"]["upload"]["href"].removeprefix(hub_server.url)
    assert (
        request(hub_server, "PUT", href, b"something else", token=None, content_type="application/octet-stream")[0]
        == 400
    )
    assert request(hub_server, "PUT", href, data, token=None, content_type="application/octet-stream")[0] == 200
    status, answer = request(hub_server, "POST", batch, body, content_type=lfs, headers={"Accept": lfs})
    assert "actions" not in answer["objects"][0]  # already stored: nothing to upload


def test_server_validates_card_metadata(hub_server):
    def validate(content: str) -> int:
        return request(
            hub_server, "POST", "/api/validate-yaml", json.dumps({"content": content, "repoType": "model"}).encode()
        )[0]

    assert validate("---\nlicense: mit\ntags:\n- a\n---\ntext") == 200
    assert validate("---\nlicense: [mit\n---\n") == 400
    assert validate("---\ntags:\n  a: 1\n---\n") == 400
    assert request(hub_server, "POST", "/api/validate-yaml", b'{"content": 1}')[0] == 400


def test_server_lists_trees_and_paths(hub_server):
    request(hub_server, "POST", "/api/repos/create", b'{"name": "m"}')
    file = {
        "key": "file",
        "value": {"path": "1_Pool/config.json", "content": base64.b64encode(b"{}").decode(), "encoding": "base64"},
    }
    header = {"key": "header", "value": {"summary": "s"}}
    request(
        hub_server, "POST", "/api/models/alice/m/commit/main", ndjson(header, file), content_type="application/x-ndjson"
    )
    status, top = request(hub_server, "GET", "/api/models/alice/m/tree/main")
    assert status == 200 and {(e["type"], e["path"]) for e in top} == {
        ("file", ".gitattributes"),
        ("directory", "1_Pool"),
    }
    status, deep = request(hub_server, "GET", "/api/models/alice/m/tree/main?recursive=True")
    assert ("file", "1_Pool/config.json") in {(e["type"], e["path"]) for e in deep}
    assert request(hub_server, "GET", "/api/models/alice/m/tree/main/additional_chat_templates")[0] == 404
    status, info = request(
        hub_server,
        "POST",
        "/api/models/alice/m/paths-info/main",
        b"paths=1_Pool%2Fconfig.json&paths=nope",
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 200 and [(e["path"], e["oid"]) for e in info] == [("1_Pool/config.json", git_blob_sha1(b"{}"))]
    assert request(hub_server, "GET", "/api/models/alice/m/tree/nobranch")[0] == 404
    assert request(hub_server, "GET", "/api/models/alice/m", token="hf_bob_write")[0] == 200  # public
