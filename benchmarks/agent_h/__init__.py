"""Agent-H (hallucination), re-constructed: the benchmark, its sample generator and judge.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
