"""Few-shot benchmark evaluation on lm-evaluation-harness.

    harness.run_eval(EvalConfig, out)    run tasks, write results.json, samples/, summary.md
    compare.compare_runs(out_a, out_b)   paired B-vs-A statistics on the same docs
    fastlm.FastHFLM                      the `limacot-fast` lm-eval backend (prefix-shared scoring)
    catalog.task_manager(data_dir, names)  lm-eval TaskManager over the task pack in tasks/, plus
                                         lm-eval's own tasks among `names` (builtin.lm_eval_entries)
    task_data.load_docs                  task docs from the hub or from --data-dir files

Importing this package imports nothing heavy; lm-eval and torch load with the modules that
need them.
"""
