"""ALFWorld (held-in): the benchmark over the TextWorld games.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
