"""CIFAR-10 data: loading the official files or tfds, tf.data input pipelines and augmentations."""
