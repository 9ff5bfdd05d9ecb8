"""A multilayer perceptron on the flattened 3,072-pixel image, hidden layers 512 and 256.

    python -m cifar_jax.main --config=configs/mlp.py --workdir=runs/mlp

SGD 0.01, momentum 0.9, no weight decay, constant learning rate, 30 epochs, batch 64, no augmentation.
Our accuracy: not yet measured.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'mlp'
  config.model.hidden_sizes = (512, 256)
  config.num_epochs = 30
  config.batch_size = 64
  config.optimizer.learning_rate = 0.01
  config.optimizer.weight_decay = 0.0
  config.schedule.name = 'constant'
  config.augment.ops = ()
  return config
