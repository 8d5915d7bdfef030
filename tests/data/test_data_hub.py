"""Hub data files (`hf:ORG/NAME/PATH[@REV]`): fetched into the Hugging Face cache, read like
local files, read again offline, keyed by content; and the errors that name the fix.

A small in-memory hub answers huggingface_hub's own HTTP requests (through its public
`set_client_factory`), so the library itself downloads and lays out the cache as it does
against huggingface.co; offline mode then reads from that cache. Gated, missing and
script-only datasets fail the way the hub and `datasets` fail."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import datasets
import httpx2
import huggingface_hub
import pytest
import yaml
from huggingface_hub import constants
from huggingface_hub.utils import _http, hf_raise_for_status
from typer.testing import CliRunner

from limacot.cli import app
from limacot.data.config import DataBuildConfig
from limacot.io.yaml_config import load_config
from limacot.data.build import build_data, build_key
from limacot.data.sources import read_prompts, read_records
from limacot.errors import DataError, LimacotInputError
from limacot.io.fingerprint import input_fingerprint
from limacot.io.hub_files import HubFile, fetch_hub_file, parse_hub_file

REPO = Path(__file__).resolve().parents[2]
LIMA_SAMPLE = REPO / "examples" / "data" / "lima_sample.jsonl"
runner = CliRunner()


class MockHub:
    """Dataset repositories answering `HEAD/GET /datasets/ORG/NAME/resolve/REV/PATH` as the hub does."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.repos: dict[str, dict] = {}
        self.requests: list[str] = []

    def publish(self, repo_id: str, files: dict[str, bytes], token: str | None = None) -> str:
        """A new commit of `repo_id` holding `files` (gated: only `token` may read); its sha."""
        commit = hashlib.sha1(json.dumps([repo_id, len(self.repos), sorted(
            (k, v.hex()) for k, v in files.items())]).encode()).hexdigest()
        self.repos[repo_id] = {"commit": commit, "files": files, "token": token}
        return commit

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        match = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", request.url.path)
        repo = self.repos.get(match.group(1)) if match else None
        if repo is None:
            return self._error(request, 404, "RepoNotFound")
        _, revision, path = (unquote(g) for g in match.groups())
        if repo["token"] and request.headers.get("authorization") != f"Bearer {repo['token']}":
            return self._error(request, 403, "GatedRepo", "Access to this dataset is restricted.")
        if revision not in ("main", repo["commit"]):
            return self._error(request, 404, "RevisionNotFound")
        data = repo["files"].get(path)
        if data is None:
            return self._error(request, 404, "EntryNotFound", commit=repo["commit"])
        headers = {"X-Repo-Commit": repo["commit"], "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                   "Content-Length": str(len(data))}
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else data,
                               request=request)

    @staticmethod
    def _error(request, status: int, code: str, message: str = "", commit: str | None = None):
        headers = {"X-Error-Code": code, **({"X-Error-Message": message} if message else {}),
                   **({"X-Repo-Commit": commit} if commit else {})}
        return httpx2.Response(status, headers=headers, request=request)


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """The mock hub online, an empty cache in tmp_path, no token; all restored afterwards."""
    mock = MockHub(tmp_path / "hf-cache")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(mock.cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(_http, "_GLOBAL_CLIENT_FACTORY", _http._GLOBAL_CLIENT_FACTORY)  # restored afterwards
    huggingface_hub.set_client_factory(lambda: httpx2.Client(  # the library's client, served by the mock
        transport=httpx2.MockTransport(mock.handle), event_hooks={"request": [_http.hf_request_event_hook]},
        follow_redirects=True))
    yield mock
    huggingface_hub.close_session()


def go_offline(monkeypatch) -> None:
    """HF_HUB_OFFLINE=1 as huggingface_hub sees it (it reads the variable once, at import)."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def lima_prompts_jsonl() -> bytes:
    """LIMA's test layout: one-turn conversations."""
    rows = [json.loads(line) for line in LIMA_SAMPLE.read_text(encoding="utf-8").splitlines()]
    return "".join(json.dumps({"conversations": r["conversations"][:1], "source": r["source"]}) + "\n"
                   for r in rows).encode()


def test_parse_hub_file_forms(tmp_path):
    assert parse_hub_file("hf:GAIR/lima/train.jsonl") == HubFile("hf:GAIR/lima/train.jsonl", "GAIR/lima",
                                                                "train.jsonl")
    pinned = parse_hub_file("hf:org/name/data/part-0.parquet@" + "a" * 40)
    assert (pinned.repo_id, pinned.filename, pinned.revision, pinned.suffix) == \
        ("org/name", "data/part-0.parquet", "a" * 40, ".parquet")
    for other in ("hf:GAIR/lima", "hf:GAIR/lima:train", f"hf:{tmp_path}/saved", "data/train.jsonl", "hf:org/name/dir"):
        assert parse_hub_file(other) is None, other
    with pytest.raises(LimacotInputError, match="expected hf:ORG/NAME/PATH"):
        parse_hub_file("hf:org//train.jsonl")
    with pytest.raises(LimacotInputError, match="expected hf:ORG/NAME/PATH"):
        parse_hub_file("hf:org/name/train.jsonl@")


def test_hub_file_is_downloaded_then_read_offline(hub, monkeypatch):
    commit = hub.publish("limacot-test/lima", {"train.jsonl": LIMA_SAMPLE.read_bytes(),
                                               "data/test.jsonl": lima_prompts_jsonl()})
    local = read_records(LIMA_SAMPLE)
    report = read_records("hf:limacot-test/lima/train.jsonl")
    assert report.format == "lima" and len(report.records) == len(local.records) > 30
    assert [r.id for r in report.records] == [r.id for r in local.records]
    path, sha = fetch_hub_file(parse_hub_file("hf:limacot-test/lima/train.jsonl"))
    assert sha == commit and path.parent == hub.cache / "datasets--limacot-test--lima" / "snapshots" / commit
    scanned = huggingface_hub.scan_cache_dir(hub.cache)  # the library accepts the layout it wrote
    assert [r.repo_id for r in scanned.repos] == ["limacot-test/lima"] and not scanned.warnings

    go_offline(monkeypatch)
    seen = len(hub.requests)
    result = runner.invoke(app, ["data", "inspect", "hf:limacot-test/lima/train.jsonl", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == len(local.records) and summary["sources"] == json.loads(
        runner.invoke(app, ["data", "inspect", str(LIMA_SAMPLE), "--json"]).stdout)["sources"]
    assert len(read_records(f"hf:limacot-test/lima/train.jsonl@{commit}").records) == len(local.records)
    assert len(hub.requests) == seen  # offline: nothing was asked of the hub
    with pytest.raises(LimacotInputError) as info:
        read_prompts("hf:limacot-test/lima/data/test.jsonl")  # never downloaded
    message = str(info.value)
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in message
    assert "hf download limacot-test/lima data/test.jsonl --repo-type dataset" in message


def test_judge_prompts_by_file_and_subfolder_revision(hub):
    commit = hub.publish("limacot-test/lima", {"data/test.jsonl": lima_prompts_jsonl()})
    prompts = read_prompts("hf:limacot-test/lima/data/test.jsonl")
    assert len(prompts) == len(LIMA_SAMPLE.read_text().splitlines())
    assert all(len(messages) == 1 and messages[0]["role"] == "user" for _, messages in prompts)
    assert fetch_hub_file(parse_hub_file("hf:limacot-test/lima/data/test.jsonl"))[1] == commit


def test_errors_in_a_hub_file_name_the_hub_path(hub):
    good = json.dumps({"conversations": ["q", "a"], "source": "x"})
    hub.publish("limacot-test/bad", {"bad.jsonl": f'{good}\n{{"conversations": ["q"\n{good}\n'.encode(),
                                     "loader.py": b"print('hi')"})
    with pytest.raises(DataError) as info:
        read_records("hf:limacot-test/bad/bad.jsonl")
    assert str(info.value).startswith("hf:limacot-test/bad/bad.jsonl:line 2: expected one complete JSON object")
    assert str(hub.cache) not in str(info.value)
    assert read_records("hf:limacot-test/bad/bad.jsonl", skip_bad=True).skipped == {"bad_json": 1}
    with pytest.raises(LimacotInputError, match=r"hf:limacot-test/bad/loader.py: unsupported file type '\.py'"):
        read_records("hf:limacot-test/bad/loader.py")
    assert not any("loader.py" in r for r in hub.requests)  # refused before downloading


def test_build_key_follows_the_hub_file_content(hub, tmp_path, monkeypatch):
    data = LIMA_SAMPLE.read_bytes()
    first = hub.publish("limacot-test/lima", {"train.jsonl": data})
    config = DataBuildConfig.model_validate({
        "sources": {"lima": {"path": "hf:limacot-test/lima/train.jsonl", "format": "lima"}},
        "variants": {"lima": {"mix": {"lima": "all"}}}, "sizes": [8]})
    key = build_key(config)
    result = build_data(config, tmp_path / "out")
    inputs = result.manifest["inputs"]["lima"]
    assert inputs["revision"] == first and inputs["sha256"] == hashlib.sha256(data).hexdigest()
    assert result.manifest["build_key"] == key and build_data(config, tmp_path / "out").up_to_date

    hub.publish("limacot-test/lima", {"train.jsonl": data, "README.md": b"# card"})  # new commit, same file
    assert build_key(config) == key
    hub.publish("limacot-test/lima", {"train.jsonl": data.replace(b"rice", b"pasta")})  # the file changed
    assert build_key(config) != key and not build_data(config, tmp_path / "out").up_to_date

    go_offline(monkeypatch)  # planning without network still works; reading says what to do
    assert input_fingerprint("hf:limacot-test/other/train.jsonl") == "unresolved:hf:limacot-test/other/train.jsonl"


def test_gated_dataset_says_accept_the_terms_and_set_hf_token(hub, monkeypatch):
    hub.publish("limacot-test/gated", {"train.jsonl": LIMA_SAMPLE.read_bytes()}, token="hf_granted_secret")
    spec = "hf:limacot-test/gated/train.jsonl"
    result = runner.invoke(app, ["data", "inspect", spec])
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "limacot-test/gated is gated" in text and "accept its terms" in text and "set HF_TOKEN" in text
    assert "https://huggingface.co/datasets/limacot-test/gated" in text and "no token was found" in text

    monkeypatch.setenv("HF_TOKEN", "hf_wrong_secret")
    result = runner.invoke(app, ["data", "inspect", spec])
    assert result.exit_code == 2 and "has not been granted access" in " ".join(result.output.split())
    assert "hf_wrong_secret" not in result.output

    monkeypatch.setenv("HF_TOKEN", "hf_granted_secret")  # huggingface_hub sends it; limacot never reads it
    result = runner.invoke(app, ["data", "inspect", spec, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == len(read_records(LIMA_SAMPLE).records)


@pytest.mark.parametrize("spec, expected", [
    ("hf:limacot-test/lima/nope.jsonl", "has no file 'nope.jsonl' at revision main. The part after ORG/NAME is "
                                        "the file's path in the repository; its files are listed at "
                                        "https://huggingface.co/datasets/limacot-test/lima/tree/main"),
    ("hf:limacot-test/absent/train.jsonl", "there is no dataset repository limacot-test/absent"),
    ("hf:limacot-test/lima/train.jsonl@v9", "has no revision 'v9'"),
])
def test_missing_file_repo_or_revision(hub, spec, expected):
    hub.publish("limacot-test/lima", {"train.jsonl": LIMA_SAMPLE.read_bytes()})
    result = runner.invoke(app, ["data", "inspect", spec])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert " ".join(result.output.split()).startswith(f"error: {spec}: ") or spec in result.output
    assert expected in " ".join(result.output.split())


def test_script_only_dataset_points_to_the_by_file_form(monkeypatch, tmp_path):
    def script_only(name, split=None, **kwargs):
        raise RuntimeError("Dataset scripts are no longer supported, but found lima.py")

    monkeypatch.setattr(datasets, "load_dataset", script_only)
    result = runner.invoke(app, ["data", "inspect", "hf:GAIR/lima:train"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "loading script (lima.py)" in text and "hf:GAIR/lima/train.jsonl" in text
    monkeypatch.undo()

    folder = tmp_path / "lima"  # the same refusal from the real `datasets`, on a local script dataset
    folder.mkdir()
    (folder / "lima.py").write_text("import datasets\n")
    (folder / "train.jsonl").write_bytes(LIMA_SAMPLE.read_bytes())
    with pytest.raises(LimacotInputError, match="loading script") as info:
        read_records(f"hf:{folder}:train")
    assert str(folder / "train.jsonl") in str(info.value)


def test_gated_dataset_through_load_dataset(monkeypatch):
    from datasets.exceptions import DatasetNotFoundError

    def gated(name, split=None, **kwargs):
        response = httpx2.Response(403, headers={"X-Error-Code": "GatedRepo"},
                                   request=httpx2.Request("GET", f"https://huggingface.co/api/datasets/{name}"))
        try:
            hf_raise_for_status(response)
        except huggingface_hub.errors.GatedRepoError as err:
            raise DatasetNotFoundError(f"Dataset '{name}' is a gated dataset on the Hub.") from err

    monkeypatch.setattr(datasets, "load_dataset", gated)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = runner.invoke(app, ["data", "inspect", "hf:GAIR/lima:train"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "GAIR/lima is gated" in text and "accept its terms" in text and "HF_TOKEN" in text


def test_cli_reads_a_cached_hub_file_offline_in_a_fresh_process(hub, tmp_path):
    hub.publish("limacot-test/lima", {"train.jsonl": LIMA_SAMPLE.read_bytes()})
    read_records("hf:limacot-test/lima/train.jsonl")  # fills the cache, as a first online run would
    env = {**os.environ, "HF_HUB_CACHE": str(hub.cache), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    cmd = [sys.executable, "-m", "limacot", "data", "inspect"]
    done = subprocess.run([*cmd, "hf:limacot-test/lima/train.jsonl", "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == len(read_records(LIMA_SAMPLE).records)
    missing = subprocess.run([*cmd, "hf:limacot-test/lima/test.jsonl"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert missing.returncode == 2 and "HF_HUB_OFFLINE=1" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.shared_data
def test_shipped_study_configs_name_lima_files(shared_data):
    data = load_config(REPO / "configs" / "data" / "seed-study.yaml", DataBuildConfig)
    assert parse_hub_file(data.sources["lima"].path) == HubFile("hf:GAIR/lima/train.jsonl", "GAIR/lima", "train.jsonl")
    study = yaml.safe_load((REPO / "configs" / "paper" / "lima-cot-llama.yaml").read_text())
    assert parse_hub_file(study["judge"]["prompts"]).filename == "test.jsonl"


@pytest.mark.shared_data
def test_real_lima_train_file_through_a_gated_hub(hub, shared_data, monkeypatch):
    hub.publish("GAIR/lima", {"train.jsonl": (shared_data / "lima" / "train.jsonl").read_bytes(),
                              "lima.py": b"# loading script"}, token="hf_granted_secret")
    monkeypatch.setenv("HF_TOKEN", "hf_granted_secret")
    result = runner.invoke(app, ["data", "inspect", "hf:GAIR/lima/train.jsonl", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 1030 and summary["trimmed"] == {"trailing_user_turn": 1}
    assert summary["sources"] == {"stackexchange": 400, "wikihow": 200, "writingprompts": 150, "authors": 200,
                                  "nlp": 50, "multi_turn": 30}


@pytest.fixture()
def hub_down(hub, monkeypatch) -> list[str]:
    """Online mode, but the hub never answers (no network, no DNS): every request fails to
    connect. Returns the attempts; huggingface_hub's waits between retries are recorded, not slept."""
    attempts: list[str] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        attempts.append(f"{request.method} {request.url.path}")
        raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)

    huggingface_hub.set_client_factory(lambda: httpx2.Client(
        transport=httpx2.MockTransport(refuse), event_hooks={"request": [_http.hf_request_event_hook]},
        follow_redirects=True))
    monkeypatch.setattr(_http.time, "sleep", lambda seconds: attempts.append(f"sleep {seconds}"))
    return attempts


def assert_no_retries(attempts: list[str]) -> None:
    """No wait between tries and no request made twice (huggingface_hub may also fetch a registry once)."""
    assert not any(a.startswith("sleep") for a in attempts) and len(set(attempts)) == len(attempts), attempts


def test_an_unreachable_hub_fails_at_once_without_retries(hub_down, capsys):
    """Without network, huggingface_hub retried each file 5 times (about 25 s, a warning per try)
    before the clear message; one unanswered request now decides, and the cache alone is used."""
    result = runner.invoke(app, ["data", "inspect", "hf:limacot-test/lima/train.jsonl"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the hub could not be reached and the file is not in the Hugging Face cache" in " ".join(
        result.output.split())
    assert "Retrying" not in result.output + capsys.readouterr().err
    assert_no_retries(hub_down)


def test_an_unreachable_hub_model_fails_at_once(hub_down):
    from limacot.models import loading as models

    with pytest.raises(LimacotInputError, match="could not find hub model 'limacot-test/tiny' locally, and the hub "
                                                "could not be reached") as err:
        models.load_tokenizer("hf:limacot-test/tiny")
    assert "not in the Hugging Face cache" in str(err.value)
    assert_no_retries(hub_down)


def test_a_cached_hub_file_is_read_while_the_hub_is_unreachable(hub, monkeypatch):
    hub.publish("limacot-test/lima", {"train.jsonl": LIMA_SAMPLE.read_bytes()})
    expected = len(read_records("hf:limacot-test/lima/train.jsonl").records)  # cached, as by an earlier run
    attempts = []
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(
        lambda request: attempts.append(request) or (_ for _ in ()).throw(httpx2.ConnectError("down", request=request)))))
    assert len(read_records("hf:limacot-test/lima/train.jsonl").records) == expected
    assert not any("/resolve/" in r.url.path for r in attempts)  # the cache alone, no file request


def test_an_unreachable_hub_dataset_fails_at_once(hub_down):
    result = runner.invoke(app, ["data", "inspect", "hf:limacot-test/absent:train"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "hf:limacot-test/absent:train: the hub could not be reached" in text and "HF_HUB_OFFLINE=1" in text
    assert_no_retries(hub_down)


def test_a_hub_source_missing_offline_names_the_config_and_source(hub, tmp_path, monkeypatch):
    go_offline(monkeypatch)
    (tmp_path / "data.yaml").write_text("sources:\n  lima: {path: 'hf:limacot-test/lima/train.jsonl'}\n"
                                        "variants:\n  v: {mix: {lima: all}}\n", encoding="utf-8")
    with pytest.raises(LimacotInputError, match=r"data.yaml: sources.lima: hf:limacot-test/lima/train.jsonl: offline "
                                                r"mode is on \(HF_HUB_OFFLINE=1\)"):
        build_data(load_config(tmp_path / "data.yaml", DataBuildConfig), tmp_path / "out")
