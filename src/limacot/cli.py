"""The `limacot` command line: the app, `--debug` (else the libraries are quieted once,
`limacot.io.cli_common.quiet_libraries`), and each stage's commands, registered in
pipeline order from `<stage>/cli.py`. Exit codes: 0 success, 2 bad input (one paragraph, no
traceback unless --debug), 1 any other failure (`limacot.io.cli_common.handled_errors`)."""

from __future__ import annotations

import typer

from limacot.data import cli as data_cli
from limacot.eval import cli as eval_cli
from limacot.generate import cli as generate_cli
from limacot.io.cli_common import quiet_libraries, state
from limacot.judge import cli as judge_cli
from limacot.report import cli as report_cli
from limacot.report import write_report
from limacot.run import cli as run_cli
from limacot.train import cli as train_cli

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="LIMA-style fine-tuning with Chain-of-Thought data: data, training, evaluation, reports.")


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for every error, and the "
                                    "libraries' own progress bars and notices.")) -> None:
    state.set_debug(debug)
    if not state.debug:
        quiet_libraries()


for _stage in (data_cli, train_cli, eval_cli, generate_cli, judge_cli):
    _stage.register(app)
run_cli.register(app, write_report=write_report)  # `limacot run` ends with the report (a layer above run)
report_cli.register(app)
