"""What several benchmarks share: the browser driver, the bash sandbox, AgentBench's history window,
QA metrics. Nothing here belongs to one task only."""
