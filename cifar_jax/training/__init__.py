"""One run or one vectorized group: steps, optimizers, the assembly from a config, checkpoints, the trainer."""
