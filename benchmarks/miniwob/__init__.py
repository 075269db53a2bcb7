"""MiniWoB++ (held-out, offline): web tasks in a real browser.

The class is registered in ``agentflan_eval.benchmarks.REGISTRY``; importing this package loads nothing else."""
