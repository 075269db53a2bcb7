"""Mind2Web (held-in): the benchmark and its DOM pruning.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
