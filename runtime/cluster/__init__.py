"""Coordination of several serve workers sharing one database: each piece of shared state behind
a small port, with an in-process implementation and a PostgreSQL one."""
