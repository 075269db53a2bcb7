"""The OS-interaction task of AgentBench: problem records, reconstructed upstream scripts, judging."""
