"""What every CLI command shares: the consoles, the --debug state, the exit-code contract
(`handled_errors`) and JSON output. Stage modules import from here, not from `limacot.cli`."""

from __future__ import annotations

import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from limacot.errors import LimacotInputError, redact_secrets

err_console = Console(stderr=True)
out_console = Console()


class _State:
    debug = os.environ.get("LIMACOT_DEBUG") == "1"

    def set_debug(self, debug: bool) -> None:
        self.debug = self.debug or debug
        if not self.debug:  # the libraries' tqdm bars (weights loading, GGUF conversion) are noise here
            os.environ.setdefault("TQDM_DISABLE", "1")


state = _State()


@contextmanager
def handled_errors() -> Iterator[None]:
    """Map exceptions to the exit-code contract: 2 for bad input, 1 for anything else. This is the
    one place where errors become messages: registered secrets are removed (limacot.errors) and
    the text is printed as is (a path like '[red]x.jsonl' is not styling)."""
    try:
        yield
    except LimacotInputError as err:
        _debug_traceback()
        err_console.print(f"[bold red]error:[/] {escape(redact_secrets(str(err)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as err:  # everything else is a failure, not bad input
        _debug_traceback()
        message = escape(redact_secrets(f"{type(err).__name__}: {err}"))
        err_console.print(f"[bold red]failed:[/] {message} (rerun with --debug for the traceback)",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _debug_traceback() -> None:
    if state.debug:
        sys.stderr.write(redact_secrets(traceback.format_exc()))


def check_out_dir(out: Path | None, flag: str = "--out") -> None:
    """An output folder must be a folder or not exist yet (nor sit below a file): checked before
    any work, so a mistyped --out never costs a run that then cannot be written."""
    if out is None:
        return
    for path in (out, *out.parents):
        if path.is_dir():
            return
        if path.exists():
            where = "is" if path == out else f"is inside {path}, which is"
            raise LimacotInputError(f"{flag} {out}: {where} an existing file; expected a folder (new or existing)")


def print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


# The compute flags every model-loading command takes (`limacot.models.compute`); None = the config's value.
DEVICE_FLAG = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (auto: the GPU if there is one).")
DTYPE_FLAG = typer.Option(None, "--dtype", help="auto | bfloat16 | float16 | float32 (auto: bf16 on GPUs that "
                          "support it, fp16 on other GPUs, fp32 on CPU).")
ATTN_FLAG = typer.Option(None, "--attn", help="Attention kernel: sdpa (default) | eager | flash_attention_2 ...")


def compute_flags(device: str | None, dtype: str | None, attn: str | None) -> dict:
    """The compute flags that were given, as config keys."""
    given = {"device": device, "dtype": dtype, "attn_implementation": attn}
    return {key: value for key, value in given.items() if value is not None}
