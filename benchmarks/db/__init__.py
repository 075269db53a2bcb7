"""Database (DBBench, held-in): the benchmark and its SQLite/MySQL engines.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
