"""T-Eval's metrics (open-compass/T-Eval ``teval/evaluators``), rewritten from their documented behaviour."""
