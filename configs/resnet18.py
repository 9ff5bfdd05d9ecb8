"""CIFAR ResNet-18 (11,173,962 parameters) with the standard recipe.

    python -m cifar_jax.main --config=configs/resnet18.py --workdir=runs/resnet18

Recipe: SGD 0.1, momentum 0.9, weight decay 5e-4, cosine decay over 200 epochs, batch 128, random crop
(padding 4) + horizontal flip. The cosine is stepped every batch (`cosine`: CosineAnnealingLR with T_max the
run's steps); the usual PyTorch script steps it once per epoch, which is `schedule.name=cosine_epoch`.
Published figure for this recipe (not ours): about 95 % test accuracy.
Our accuracy: not yet measured.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'resnet18'
  config.num_epochs = 200
  config.batch_size = 128
  config.optimizer.learning_rate = 0.1
  config.optimizer.weight_decay = 5e-4
  config.schedule.name = 'cosine'
  return config
