"""AgentBench's Knowledge Graph tools over Freebase: programs, their SPARQL, and SPARQL clients."""
