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
