"""WebArena (held-out): the benchmark and its evaluators.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
