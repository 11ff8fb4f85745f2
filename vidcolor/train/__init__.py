"""Trainers for the colorization models: data, augmentation, losses, the loop, evaluation."""
