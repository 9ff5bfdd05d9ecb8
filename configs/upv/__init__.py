"""The UPV report's experiments (progressive CIFAR-10 pipeline): one config per row of its table."""
