"""HotpotQA (held-out): the benchmark and its search backends.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
