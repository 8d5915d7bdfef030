"""The study as one command: the plan (content-hash keys), its execution, the launchers (local,
Slurm); what it records (cells, the plan, results) is the schema of `limacot.study`."""
