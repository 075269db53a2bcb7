"""ScienceWorld support: a JVM-backed simulator that is always shut down, and AgentTuning's agent-side rules."""
