"""What every CLI command shares: the consoles, the --debug state, the exit-code contract
(`handled_errors`), JSON output, the options that set config fields (`config_flag`; a
command reads them over its --config YAML with `limacot.io.yaml_config.load_config`), the
libraries quieted once (`quiet_libraries`) and the one progress display (`progress_bars`).
Stage modules import from here, not from `limacot.cli`."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from limacot.errors import LimacotInputError, redact_secrets
from limacot.io.yaml_config import flag_name

err_console = Console(stderr=True)
out_console = Console()


class _State:
    debug = os.environ.get("LIMACOT_DEBUG") == "1"

    def set_debug(self, debug: bool) -> None:
        self.debug = self.debug or debug


state = _State()

QUIET_LOGGERS = ("lm_eval", "datasets", "transformers")
QUIET_ENV = {"TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "DATASETS_VERBOSITY": "error",
             "TRANSFORMERS_VERBOSITY": "error"}


def quiet_libraries() -> None:
    """The third-party libraries' progress bars (weights loading, GGUF conversion, dataset maps)
    and notices (lm-eval builds every task aloud) off: only their errors are shown. The app
    calls it once, unless --debug; a variable the user set keeps its value. Set as environment
    variables too, since datasets and transformers read them when they are first imported."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "datasets" in sys.modules:  # imported already, so it has read its variables
        sys.modules["datasets"].disable_progress_bars()


Update = Callable[..., None]


@contextmanager
def progress_bars(show: bool = True, console: Console = err_console) -> Iterator[Update]:
    """The one progress display of the commands: yields `update(label, done, total, detail="")`,
    which draws one bar per label (done/total, elapsed, time left, then `detail`) on stderr while
    the block runs. Labels and details are text, not rich markup ('[seed 2] ...' stays as written).
    With `show` False (--json, a worker process) `update` draws nothing.

        with progress_bars() as update:
            update("judge requests", 40, 200)    # judge requests ━━━━━━━╺━━━━━━━━ 40/200 0:00:12 0:00:48
    """
    if not show:
        yield lambda label, done, total, detail="": None
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.fields[detail]}", markup=False), console=console)
    bars: dict[str, TaskID] = {}

    def update(label: str, done: int, total: int, detail: str = "") -> None:
        if label not in bars:
            bars[label] = progress.add_task(escape(label), total=total, detail="")
        progress.update(bars[label], completed=done, total=total, detail=detail)

    with progress:
        yield update


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
    """The compute flags as config keys (None: not given), for `load_config`."""
    return {"device": device, "dtype": dtype, "attn_implementation": attn}


def config_flag(model: type[BaseModel], field: str, *names: str, help: str | None = None, **kwargs: Any) -> Any:
    """The typer option that sets `field` of `model`, declared by the field: its flag
    (`flag_name`), its description and default as the help (unless `help` is given), and None
    as the option's default, so an option that is not given leaves the config file's value,
    else the model's default. Limits are the model's too (checked when `load_config` validates).

        max_new_tokens: Optional[int] = config_flag(GenerateConfig, "max_new_tokens")
        # --max-new-tokens  <int>  Longest answer, in new tokens. Default: 256.
    """
    info = model.model_fields[field]
    flag = names or (flag_name(model, field),)
    if help is not None:
        return typer.Option(None, *flag, help=help, **kwargs)
    text = (info.description or "").strip().removesuffix(".")
    sentences = [_sentence_case(text)] if text else []
    if info.is_required():
        sentences.append("Required (here or in the --config file)")
    else:
        default = info.get_default(call_default_factory=True)
        if not (default is None or default is False or default in ([], {}) or "default" in text):
            sentences.append(f"Default: {default}")
    return typer.Option(None, *flag, help=". ".join(sentences) + "." if sentences else None, **kwargs)


def _sentence_case(text: str) -> str:
    """A description as a sentence: 'score only the first N docs' -> 'Score only ...'; a list of
    values ('fast (prefix-shared scoring) | hf', 'auto | on: ...') or a spec ('openai:MODEL ...')
    keeps its case."""
    bar, colon = text.find(" | "), text.find(": ")
    lists_values = bar >= 0 and (colon < 0 or bar < colon)
    return text[:1].upper() + text[1:] if re.match(r"[a-z][a-z-]*[ ,]", text) and not lists_values else text
