"""`limacot run --launcher slurm`: one sbatch script per GPU job, chained by dependencies.

    STUDY_DIR/slurm/<stage>-<key16>.sbatch   train: multi-node `accelerate launch` with the preset's
                                            accelerate config (one task per node, torchrun inside);
                                            eval/generate: one GPU
    STUDY_DIR/slurm/finish.sbatch           after all of them: `limacot run` (judge, compare, report)
    STUDY_DIR/slurm/submit.sh               submits everything with --dependency=afterok:...

Each script runs exactly one job with `limacot run --job KEY`, which writes the same output
folder and completion marker as a local run; the final `limacot run` adopts them into the
results store. `submit.sh` is run at once when `sbatch` is on PATH.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from limacot.run.plan import GPU_STAGES, Job, Plan

HEADER = """#!/usr/bin/env bash
#SBATCH --job-name={name}
#SBATCH --output={logs}/%x-%j.out
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={gpus}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{extra}set -euo pipefail
cd {cwd}
"""


def _accelerate_config(job: Job) -> dict:
    import yaml

    path = job.inputs["config"].get("accelerate_config")
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else {}


def _train_body(job: Job, run_cmd: str) -> tuple[str, int, int]:
    """The srun line for a (multi-node) training job, its node count and GPUs per node."""
    config_path = job.inputs["config"].get("accelerate_config")
    accelerate = _accelerate_config(job)
    nodes = int(accelerate.get("num_machines", 1))
    gpus = max(1, int(accelerate.get("num_processes", 1)) // nodes)
    launch = ["accelerate", "launch", "--num_machines", "$SLURM_NNODES", "--num_processes",
              "$((SLURM_NNODES * %d))" % gpus, "--machine_rank", "$SLURM_NODEID",
              "--main_process_ip", "$MASTER_ADDR", "--main_process_port", "29500"]
    if config_path:
        launch[2:2] = ["--config_file", shlex.quote(config_path)]
    body = ('MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\nexport MASTER_ADDR\n'
            f"srun bash -c '{' '.join(launch)} -m limacot {run_cmd}'\n")
    return body, nodes, gpus


def write_scripts(plan: Plan, config_path: Path, *, partition: str | None = None, time: str = "24:00:00",
                  submit: bool | None = None) -> Path:
    """Write the scripts (see module docstring); submit them when sbatch exists (or `submit`)."""
    folder = plan.study_dir / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    extra = f"#SBATCH --partition={partition}\n" if partition else ""
    base = f"run --config {shlex.quote(str(config_path))} --out {shlex.quote(str(plan.study_dir))}"
    python = shlex.quote(sys.executable)
    lines, ids = ["#!/usr/bin/env bash", "# Submits the study's jobs in dependency order.", "set -euo pipefail",
                  f"cd {shlex.quote(str(folder))}"], {}
    for job in plan.jobs:
        if job.stage not in GPU_STAGES or job.is_done():
            continue
        run_cmd = f"{base} --job {job.key}"
        if job.stage == "train":
            body, nodes, gpus = _train_body(job, run_cmd)
        else:
            body, nodes, gpus = f"{python} -m limacot {run_cmd}\n", 1, 1
        name = f"{job.stage}-{job.key[:16]}"
        script = HEADER.format(name=f"limacot-{name}", logs=folder / "logs", nodes=nodes, gpus=gpus,
                               cpus=8 * gpus, time=time, extra=extra, cwd=shlex.quote(str(Path.cwd()))) + body
        (folder / f"{name}.sbatch").write_text(script, encoding="utf-8")
        deps = [ids[d.key] for d in job.deps if d.key in ids]
        dependency = f"--dependency=afterok:{':'.join('$' + d for d in deps)} " if deps else ""
        ids[job.key] = f"J{len(ids)}"
        lines.append(f"{ids[job.key]}=$(sbatch --parsable {dependency}{name}.sbatch)")
    finish = HEADER.format(name="limacot-finish", logs=folder / "logs", nodes=1, gpus=1, cpus=8, time=time,
                           extra=extra, cwd=shlex.quote(str(Path.cwd()))) + f"{python} -m limacot {base}\n"
    (folder / "finish.sbatch").write_text(finish, encoding="utf-8")
    all_deps = ":".join("$" + v for v in ids.values())
    lines.append(f"sbatch {'--dependency=afterok:' + all_deps + ' ' if all_deps else ''}finish.sbatch")
    (folder / "submit.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "submit.sh").chmod(0o755)
    if submit if submit is not None else shutil.which("sbatch"):
        subprocess.run(["bash", str(folder / "submit.sh")], check=True)
    return folder
