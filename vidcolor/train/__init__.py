"""Training: datasets, losses and loops behind ``vidcolor train``."""
