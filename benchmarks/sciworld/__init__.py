"""ScienceWorld (held-out): the benchmark, its JVM simulator and AgentTuning's agent-side rules.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
