"""A multilayer perceptron on the flattened 3,072-pixel image, hidden layers 512 and 256.

    python -m cifar_jax.main --config=configs/mlp.py --workdir=runs/mlp

SGD 0.01, momentum 0.9, no weight decay, constant learning rate, 30 epochs, batch 64, no augmentation.
Our accuracy, measured: 50.81 % test after 30 epochs (train 88.6 %: without augmentation or weight
decay it overfits), in 1 min 35 s at 16,100 images/s on a 2-core CPU (no GPU; jax 0.10.2) with the
on-device pipeline:

    python -m cifar_jax.main --config=configs/mlp.py --workdir=runs/mlp \
        --config.data.data_dir=../shared/data/cifar10 --config.data.pipeline=device
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
