"""VGG-16 with BatchNorm and one dense layer (14,728,266 parameters).

    python -m cifar_jax.main --config=configs/vgg16.py --workdir=runs/vgg16

Same recipe as configs/resnet18.py (SGD 0.1, momentum 0.9, wd 5e-4, cosine over 200 epochs stepped per batch,
batch 128, crop + flip). Published figure for this recipe (not ours): about 92.6 % test accuracy.
Our accuracy: not yet measured.
"""

from configs import resnet18


def get_config():
  config = resnet18.get_config()
  config.model.name = 'vgg16'
  return config
