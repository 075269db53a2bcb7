"""Search backends for the ReAct Wikipedia tools: an offline paragraph corpus and live Wikipedia."""
