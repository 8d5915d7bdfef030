"""The data commands through the CLI: exit codes, messages, --json, --skip-bad counts.

Most cases run in-process (typer's CliRunner, milliseconds); one runs the real console
entry point as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from limacot.cli import app

runner = CliRunner()
GOOD = {"conversations": ["What is 2+2?", "It is 4."], "source": "nlp"}
GOOD_MESSAGES = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def write_lines(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else (line + "\n").encode("utf-8")
                              for line in lines))
    return path


# (name, bad line, reason): each sits at line 2 of a three-line file between good lines.
FUZZ = [
    ("truncated", '{"conversations": ["q", "a"]', "bad_json"),
    ("wrong_type", '{"conversations": ["q", {"text": "a"}]}', "wrong_type"),
    ("missing_field", '{"source": "nlp"}', "missing_field"),
    ("empty_turn", '{"conversations": ["", "a"]}', "empty_turn"),
    ("role_order", '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}, '
                   '{"role": "assistant", "content": "b"}]}', "wrong_role_order"),
    ("invalid_utf8", b'{"conversations": ["\xff\xfe", "a"]}\n', "invalid_utf8"),
]


@pytest.mark.parametrize("name, bad, reason", FUZZ, ids=[f[0] for f in FUZZ])
def test_bad_input_exits_2_with_file_and_line(tmp_path, name, bad, reason):
    good = json.dumps(GOOD_MESSAGES if name == "role_order" else GOOD)
    path = write_lines(tmp_path / f"{name}.jsonl", [good, bad, good])
    fmt = ["--format", "messages"] if name == "role_order" else ["--format", "lima"]
    result = runner.invoke(app, ["data", "inspect", str(path), *fmt])
    assert result.exit_code == 2, result.output
    assert f"{name}.jsonl:line 2:" in result.output and "expected" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["data", "inspect", str(path), *fmt, "--skip-bad", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 2 and summary["skipped"] == {reason: 1}


def test_inspect_json_keys_and_crlf_bom(tmp_path):
    body = "\r\n".join(json.dumps(r) for r in [GOOD, {"conversations": ["a", "b", "c"], "source": "x"}])
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode() + b"\r\n")
    result = runner.invoke(app, ["data", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 2 and summary["skipped"] == {}
    assert summary["sources"] == {"nlp": 1, "x": 1} and summary["turns"] == {"2": 2}
    assert summary["trimmed"] == {"trailing_user_turn": 1}


def test_bad_flag_values_exit_2(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [json.dumps(GOOD)])
    assert runner.invoke(app, ["data", "inspect", str(path), "--format", "nope"]).exit_code == 2
    assert runner.invoke(app, ["data", "inspect", str(path), "--columns", "broken"]).exit_code == 2
    assert runner.invoke(app, ["data", "build", "--config", str(tmp_path / "no.yaml"),
                               "--out", str(tmp_path / "o")]).exit_code == 2


def test_console_script_end_to_end(tmp_path):
    """The real entry point, as a user runs it: build twice (second is a no-op), then inspect."""
    write_lines(tmp_path / "lima.jsonl", [json.dumps({"conversations": [f"q{i} " * 3, f"a{i} " * 3],
                                                      "source": "s"}) for i in range(6)])
    (tmp_path / "data.yaml").write_text("sources:\n  lima: {path: lima.jsonl}\n"
                                        "variants:\n  lima: {mix: {lima: all}}\nsizes: [2, 4]\n")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, "-m", "limacot", "data", "build", "--config", str(tmp_path / "data.yaml"),
           "--out", str(tmp_path / "out")]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "built 2 training files" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0 and "up to date" in second.stdout
    bad = subprocess.run([sys.executable, "-m", "limacot", "data", "inspect", str(tmp_path / "missing.jsonl")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
