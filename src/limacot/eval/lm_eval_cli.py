"""lm-eval's own command line with limacot's backend registered (`--model limacot-fast`).

lm-eval finds model backends in its registry, which only its own modules fill; this entry
point imports `limacot.eval.fastlm` (registering `limacot-fast`) and hands over to
`lm_eval`'s CLI unchanged:

    python -m limacot.eval.lm_eval_cli --model limacot-fast --model_args pretrained=embedded \\
        --include_path "$(python -m limacot.eval.lm_eval_cli --print-include-path)" \\
        --tasks kobest --num_fewshot 5 --metadata '{"limacot_data_dir": "../shared/data"}'

`--print-include-path` prints the folder of limacot's task YAMLs and exits.
"""

from __future__ import annotations

import sys

from limacot.eval.catalog import TASKS_DIR


def main() -> None:
    if sys.argv[1:] == ["--print-include-path"]:
        print(TASKS_DIR)
        return
    import limacot.eval.fastlm  # noqa: F401  (registers "limacot-fast" with lm-eval; deferred: imports torch)
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
