"""Agent-FLAN fine-tuning: the data pipeline (``build-data``) and supervised fine-tuning (``train``).

Parse agent trajectories into typed steps (parse), align ReAct to natural chat (align), decompose
the supervision by capability with per-turn loss flags (decompose), add negative samples
(negatives), mix with general chat (build_data), and fine-tune any causal LM on it (train).
"""
