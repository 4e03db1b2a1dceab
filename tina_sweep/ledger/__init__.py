"""The ledger: the Optuna storage (SQLite, PostgreSQL) that records every trial's attempts and results, and
survives crashes (``store``)."""
