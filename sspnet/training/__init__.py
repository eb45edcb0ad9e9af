"""Training: the loop, losses, distributed runs, experiments and the prior fit."""
