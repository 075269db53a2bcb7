"""WebShop (held-in): the benchmark, its offline site, catalogue and reward.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
