"""Knowledge Graph (held-in): the benchmark, its tool programs and SPARQL client.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
