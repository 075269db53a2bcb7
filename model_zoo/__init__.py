"""Chat templates, known models and published baselines."""
