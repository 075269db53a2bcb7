"""Mind2Web (Deng et al. 2023) as a multiple-choice step task: DOM pruning, prompts and metrics."""
