"""OS Interaction (held-in): the benchmark, its bash sandbox problems and check scripts.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
