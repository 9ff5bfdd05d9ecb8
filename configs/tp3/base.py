"""The TP3 report's common setup: an 80/20 train/validation split and the SGD baseline every stage starts from.

Not an experiment itself: every config in configs/tp3/ derives from it. The report, section 1
("Configuración"):

  "Para comenzar, realizamos una división del 80% para entrenamiento y 20% para validación. [...]
  Registramos tanto la pérdida (loss) y precisión (accuracy) en el conjunto de entrenamiento como en el
  conjunto de validación en cada iteración [...] identificamos y aislamos las diferentes modificaciones
  como variables independientes, manteniendo las otras condiciones constantes."

  (We split 80 % for training and 20 % for validation; we log training and validation loss and accuracy
  throughout; we change one thing at a time and keep everything else constant.)

So: `data.val_fraction = 0.2` (40,000 training and 10,000 validation images, drawn by `seed`), test measured
once at the end. Readings where the report is silent, stated here once for all of TP3:
- optimizer: SGD with a constant learning rate of 0.01 and momentum 0.9, no weight decay: the setting the
  report's optimizer stage names as its best ("SGD con un learning rate constante de 0.01 y un valor de
  momentum de 0.9");
- length and batch: 25 epochs of batch 64, the values its hyperparameter stage finally chose, so that every
  stage trains as long as the final model;
- inputs: per-channel normalization (the report lists it among its transforms) and no augmentation before
  the regularization stage.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  """The default config with TP3's split and baseline training; the model stays to be chosen."""
  config = default.get_config()
  config.data.val_fraction = 0.2
  config.num_epochs = 25
  config.batch_size = 64
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.01
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 0.0
  config.schedule.name = 'constant'
  config.augment.ops = ()
  return config
