"""The input pipeline behind one interface, chosen by `config.data.pipeline`.

    tfdata   host tf.data (`tfdata.TfDataPipeline`): batches are this process's numpy share
    device   on the accelerators (`device.DevicePipeline`): batches are global arrays already sharded

The training loop and the benchmark see only `Pipeline`; TensorFlow is imported only when the tf.data
pipeline is chosen, so a device-pipeline run works where TensorFlow is not installed.
"""

from collections.abc import Iterator
from typing import Protocol

import jax
import ml_collections

from cifar_jax import config_check
from cifar_jax.data import device
from cifar_jax.data.batch import Batch
from cifar_jax.data.cifar10 import Cifar10
from cifar_jax.errors import check_choice


class Pipeline(Protocol):
  """Seeded, resumable training epochs and padded, masked evaluation passes."""

  def train_batches(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
    """Epoch `epoch` from batch `start_batch` on: {'image': float32 [B, 32, 32, 3], 'label': int32 [B]}."""
    ...

  def eval_batches(self, split: str) -> Iterator[Batch]:
    """The split ('train', 'val' or 'test') in order, the last batch padded; 'mask' is False on padding."""
    ...


def create_pipeline(data: Cifar10, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> Pipeline:
  """The pipeline `config.data.pipeline` names, over `data`, feeding batches sharded over `mesh`."""
  check_choice('data.pipeline', config.data.pipeline, config_check.PIPELINES)
  if config.data.pipeline == 'device':
    return device.DevicePipeline(data, config, mesh)
  from cifar_jax.data import tfdata  # pylint: disable=import-outside-toplevel  (imports TensorFlow)

  return tfdata.TfDataPipeline(data, config)
