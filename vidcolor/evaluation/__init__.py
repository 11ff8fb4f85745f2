"""Scoring colorizations against the truth: ``images`` (photographs: PSNR, CIEDE2000,
colourfulness against the grey baseline; `vidcolor eval`), ``video`` (films: E_warp, CDC, PSNR,
colourfulness; `vidcolor eval-video`).

The metrics themselves (pure functions and streaming meters on tensors) live in vidcolor.metrics.
"""
