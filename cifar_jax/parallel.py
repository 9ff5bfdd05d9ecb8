"""Data parallelism over every device: a sharded `jax.jit` mesh (the default) or `jax.pmap`.

Both give the same numbers: under jit the global batch is sharded along the mesh's `data` axis and
XLA inserts the gradient and BatchNorm reductions; under pmap the step averages them itself with
`lax.pmean` over the `data` axis and BatchNorm layers are told that axis name.
"""

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from cifar_jax import config_check
from cifar_jax.data.batch import Batch
from cifar_jax.errors import ConfigError, check_choice
from cifar_jax.models import layers

AXIS = 'data'


def check_batch_size(key: str, batch_size: int) -> None:
  """Refuses a global batch size that every device cannot get an equal share of."""
  devices = jax.device_count()
  if batch_size < 1 or batch_size % devices:
    raise ConfigError(
        f'{key}={batch_size} must be a positive multiple of the device count ({devices}) '
        f'so that every device gets an equal share'
    )


class DataParallel(Protocol):
  """What the training loop needs from a parallelism strategy."""

  axis_name: str | None
  mesh: jax.sharding.Mesh  # the devices, along the 'data' axis

  def put_state(self, state: Any) -> Any:
    ...

  def get_state(self, state: Any) -> Any:
    ...

  def put_batch(self, batch: Batch) -> Batch:
    ...

  def compile_train(self, step: Callable) -> Callable:
    ...

  def compile_eval(self, step: Callable) -> Callable:
    ...


class JitParallel:
  """State replicated and the batch sharded over a 1-D mesh of every device; works across processes."""

  axis_name = None

  def __init__(self) -> None:
    self.mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    self.replicated = NamedSharding(self.mesh, PartitionSpec())
    self.sharded = NamedSharding(self.mesh, PartitionSpec(AXIS))

  def put_state(self, state: Any) -> Any:
    """Replicates a state over the mesh (through the host, so that it also works across processes)."""
    return jax.device_put(jax.device_get(state), self.replicated)

  def get_state(self, state: Any) -> Any:
    """The state as one logical copy (already so under jit)."""
    return state

  def put_batch(self, batch: Batch) -> Batch:
    """Assembles this process's slice of a host batch into one array sharded over every device;
    a batch already on the devices (the device pipeline's) passes through. The copy is explicit, so the training
    loop's transfer guard allows it."""
    with jax.transfer_guard_host_to_device('allow'):
      return {
          k: v if isinstance(v, jax.Array) else jax.make_array_from_process_local_data(self.sharded, v)
          for k, v in batch.items()
      }

  def compile_train(self, step: Callable) -> Callable:
    """step(state, batch, seed) compiled with the state donated; the seed is replicated like the state."""
    return jax.jit(
        step,
        in_shardings=(self.replicated, self.sharded, self.replicated),
        out_shardings=self.replicated,
        donate_argnums=0,
    )

  def compile_eval(self, step: Callable) -> Callable:
    return jax.jit(step, in_shardings=(self.replicated, self.sharded), out_shardings=self.replicated)


class PmapParallel:
  """The per-device `jax.pmap` model: a copy of the state per local device, explicit `pmean` in the step."""

  axis_name = AXIS

  def __init__(self) -> None:
    if jax.process_count() > 1:
      raise ConfigError('parallelism=pmap runs on one process; use parallelism=jit with several hosts')
    self.devices = jax.local_devices()
    self.mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS,))
    self.stacked = NamedSharding(self.mesh, PartitionSpec(AXIS))

  def put_state(self, state: Any) -> Any:
    """One copy of the state per local device, stacked along a leading device axis."""
    n = len(self.devices)
    return jax.tree.map(lambda x: jax.device_put(jnp.broadcast_to(x, (n, *jnp.shape(x))), self.stacked), state)

  def get_state(self, state: Any) -> Any:
    """The first device's copy (all copies are identical)."""
    return jax.tree.map(lambda x: x[0], state)

  def put_batch(self, batch: Batch) -> Batch:
    """The batch split along a leading device axis, one slice per device: an explicit copy, allowed under
    `jax.transfer_guard('disallow')` (which the training loop runs under)."""
    n = len(self.devices)
    return {
        k: jax.device_put(np.reshape(v, (n, v.shape[0] // n, *v.shape[1:])), self.stacked) for k, v in batch.items()
    }

  def compile_train(self, step: Callable) -> Callable:
    """step(state, batch, seed) per device, the state donated; the seed is put like the state (`put_state`)."""
    return jax.pmap(step, axis_name=AXIS, donate_argnums=0)

  def compile_eval(self, step: Callable) -> Callable:
    return jax.pmap(step, axis_name=AXIS)


def create_parallel(name: str) -> DataParallel:
  """The strategy for `config.parallelism`."""
  check_choice('parallelism', name, config_check.PARALLELISMS)
  return JitParallel() if name == 'jit' else PmapParallel()


def set_batch_axis(model: nnx.Module, axis_name: str | None) -> None:
  """Names the device axis that splits the batch (`axis_name`, under pmap) to every layer that must see the
  global batch: BatchNorm averages its statistics over it, Dropout numbers its examples across it."""
  for _, module in nnx.iter_modules(model):
    if isinstance(module, (nnx.BatchNorm, layers.Dropout)):
      module.axis_name = axis_name
