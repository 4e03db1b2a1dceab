"""One trial: its spec, data, prompts and model; training (``train/``), evaluation (``evaluate/``), grading and cost.

A trial never reaches up to the runner, the worker, the ledger or the CLI (import-linter checks it).
"""
