"""A film's way through vidcolor, one stage per file: prepare -> temporal (plan) -> model_runner
-> temporal (push) -> compose, over the frame batch of frames.py; run.py wires them."""
