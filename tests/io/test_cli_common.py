"""The one place where errors become messages: secrets removed, text printed as is."""

import pytest
import typer

from limacot import errors
from limacot.io.cli_common import handled_errors
from limacot.errors import LimacotInputError, register_secret


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setattr(errors, "_SECRETS", set())
    key = "k3y-abc\r\nInjected: header-part-two"
    register_secret(key)
    return key


@pytest.mark.parametrize("exc", [LimacotInputError, ValueError])
def test_a_registered_secret_never_reaches_a_message(secret, exc, capsys):
    with pytest.raises(typer.Exit):
        with handled_errors():
            raise exc(f"Invalid header value {('Bearer ' + secret).encode()!r}; sent: {secret}; "
                      f"the second line alone: Injected: header-part-two")
    err = capsys.readouterr().err
    assert "k3y-abc" not in err and "header-part-two" not in err
    assert "***" in err


def test_brackets_in_a_message_are_text_not_styling(capsys):
    with pytest.raises(typer.Exit) as exit_info:
        with handled_errors():
            raise LimacotInputError("[red]x/bad.jsonl:3: field 'conversations': expected conversations: [str]")
    assert exit_info.value.exit_code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "[red]x/bad.jsonl:3" in err and "conversations: [str]" in err


def test_a_bearer_token_is_removed_without_what_follows_it():
    from limacot.errors import redact_secrets

    assert redact_secrets('{"reason": "header Bearer abc123"}') == '{"reason": "header Bearer ***"}'
    assert redact_secrets("Authorization: Bearer tok3n, next") == "Authorization: Bearer ***, next"


def test_progress_bars_draw_one_bar_per_label_as_text():
    from rich.console import Console

    from limacot.io.cli_common import progress_bars

    console = Console(record=True, width=120, force_terminal=False)
    with progress_bars(console=console) as update:
        update("[bold]judge[/] requests", 3, 10)
        update("[bold]judge[/] requests", 4, 10, "[red]detail")
        update("train", 1, 2)
    text = console.export_text()
    assert "[bold]judge[/] requests" in text and "4/10" in text and "[red]detail" in text and "1/2" in text
    with progress_bars(show=False, console=console) as update:
        update("hidden", 1, 2)
    assert "hidden" not in console.export_text()


def test_quiet_libraries_leaves_what_the_user_set(monkeypatch):
    import logging
    import os

    from limacot.io.cli_common import QUIET_ENV, QUIET_LOGGERS, quiet_libraries

    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setenv("TQDM_DISABLE", "0")
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        quiet_libraries()
        assert os.environ["TQDM_DISABLE"] == "0" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
        assert all(logging.getLogger(name).level == logging.ERROR for name in QUIET_LOGGERS)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
