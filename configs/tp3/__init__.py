"""The TP3 report's experiments (hyperparameter study on CIFAR-10): one config per experiment."""
