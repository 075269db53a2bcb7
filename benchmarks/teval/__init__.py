"""T-Eval (held-out): the benchmark and its six ability metrics.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
