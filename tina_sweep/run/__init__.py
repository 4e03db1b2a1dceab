"""Running a study's trials: preflight checks, the runner and its workers, one job per trial attempt, Slurm,
W&B tracking, secrets and status."""
