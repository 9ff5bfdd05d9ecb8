"""TP3 stage 5b: the three learning-rate schedules on ResNet-18, ReLU6, SGD 0.01 momentum 0.9.

    python -m cifar_jax.sweep --config=configs/sweeps/tp3_schedules.py --workdir=runs/tp3_schedules

The report (section 5): "utilizamos varios schedulers para ajustar el learning rate durante el
entrenamiento, incluyendo: ExponentialLR, MultiStepLR, StepLR [...] concluimos que el mejor scheduler nos
lo brindó el ExponentialLR, ya que tuvo la precisión más alta del modelo." (ExponentialLR gave the highest
accuracy.)

Base: configs/tp3/CNN_ResNet-18.py with ReLU6 and SGD 0.01, momentum 0.9 (the optimizer winner), 25 epochs.
Readings chosen (the report gives no schedule parameters), each stepping once per epoch as PyTorch's do:
ExponentialLR gamma 0.95; MultiStepLR milestones at epochs 10 and 20, gamma 0.1; StepLR every 7 epochs,
gamma 0.1 (the PyTorch transfer-learning tutorial's values). The report's winner: ExponentialLR (no
accuracy given). Ours: docs/results.md.
"""

import ml_collections

from configs.sweeps import default


def get_config() -> ml_collections.ConfigDict:
  """ResNet-18 + ReLU6 + SGD once per schedule."""
  config = default.get_config()
  config.base = 'configs/tp3/CNN_ResNet-18.py'
  config.overrides = ml_collections.ConfigDict({'model': {'activation': 'relu6'}})
  config.variants = [
      {'name': 'ExponentialLR', 'overrides': {'schedule.name': 'exponential', 'schedule.gamma': 0.95}},
      {
          'name': 'MultiStepLR',
          'overrides': {'schedule.name': 'multistep', 'schedule.milestones': (10, 20), 'schedule.gamma': 0.1},
      },
      {'name': 'StepLR', 'overrides': {'schedule.name': 'step', 'schedule.step_epochs': 7, 'schedule.gamma': 0.1}},
  ]
  return config
