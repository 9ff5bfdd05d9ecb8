"""The speedrun pieces, each against an independent computation: patch whitening, Muon, the parameter split,
frozen BatchNorm scale, alternating flip (both backends, through both pipelines), test-time augmentation and the
benchmark's smoke mode."""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import helpers

from cifar_jax import config_check
from cifar_jax.data import augment_jax, augment_tf, cifar10, device, normalization, tfdata
from cifar_jax.data.augment_config import Examples
from cifar_jax.errors import ConfigError
from cifar_jax.models import create_model, speedrun
from cifar_jax.training import experiment, optim, steps
from configs import default
from configs import speedrun as speedrun_config

TINY_WIDTHS = (8, 8, 8)


def _tiny_net(seed: int = 0) -> speedrun.SpeedrunNet:
  return create_model('speedrun_net', rngs=nnx.Rngs(seed), activation='gelu', widths=TINY_WIDTHS)


def _images(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
  """Images with correlated pixels and channels (as photographs have), float32 [count, size, size, 3]."""
  rng = np.random.default_rng(seed)
  noise = rng.normal(size=(count, size + 1, size + 1, 3))
  smooth = noise[:, 1:, 1:] + 0.8 * noise[:, :-1, 1:] + 0.5 * noise[:, 1:, :-1]
  return (smooth @ np.array([[1.0, 0.6, 0.3], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]) + 0.3).astype(np.float32)


# --- whitening ---


@pytest.mark.parametrize('eps', [0.0, speedrun.WHITEN_EPS])
def test_whitening_filters_make_the_patch_covariance_the_identity(eps):
  images = _images(64)
  kernel = np.asarray(speedrun.whitening_filters(jnp.asarray(images), eps=eps))
  assert kernel.shape == (2, 2, 3, 24)
  np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
  outputs = jax.lax.conv_general_dilated(  # the filters applied as a conv layer applies them, not as they were made
      jnp.asarray(images),
      jnp.asarray(kernel[..., :12]),
      (1, 1),
      'VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=jax.lax.Precision.HIGHEST,
  )
  flat = np.asarray(outputs, np.float64).reshape(-1, 12)
  moments = flat.T @ flat / len(flat)
  # numpy's patches, in float64: each 2x2 window of every image, its second-moment eigenvalues largest first
  windows = np.lib.stride_tricks.sliding_window_view(images.astype(np.float64), (2, 2), axis=(1, 2))
  patches = windows.reshape(-1, 12)
  eigenvalues = np.linalg.eigvalsh(patches.T @ patches / len(patches))[::-1]
  np.testing.assert_allclose(moments, np.diag(eigenvalues / (eigenvalues + eps)), atol=2e-3)


def test_the_experiment_whitens_with_the_first_training_images_as_the_net_sees_them():
  train = cifar10.Split((np.random.default_rng(0).random((20, 32, 32, 3)) * 255).astype(np.uint8), np.zeros(20))
  net = create_model('speedrun_net', rngs=nnx.Rngs(0), widths=TINY_WIDTHS, whiten_examples=8)
  experiment.init_from_data(net, train.images, normalize=normalization.DEFAULT)
  seen = (train.images[:8] / 255 - np.array(cifar10.CIFAR10_MEAN)) / np.array(cifar10.CIFAR10_STD)
  expected = speedrun.whitening_filters(jnp.asarray(seen, jnp.float32))
  np.testing.assert_allclose(np.asarray(net.whiten.kernel[...]), np.asarray(expected), rtol=1e-4, atol=1e-4)


# --- the net ---


def test_dirac_init_passes_the_first_channels_through():
  kernel = speedrun.dirac_conv_init(jax.random.key(0), (3, 3, 4, 6))
  x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype(np.float32)
  y = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'), precision=jax.lax.Precision.HIGHEST
  )
  np.testing.assert_allclose(np.asarray(y)[..., :4], x, atol=1e-6)
  bound = 1 / np.sqrt(3 * 3 * 4)  # torch's default Conv2d init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), on the rest
  assert np.all(np.abs(np.asarray(kernel[..., 4:])) <= bound) and np.std(np.asarray(kernel[..., 4:])) > bound / 4


def test_batchnorm_running_statistics_use_pytorch_momentum_0_4():
  """airbench's BatchNorm(momentum=0.6) passes momentum 1 - 0.6 to torch: running = 0.6 running + 0.4 batch."""
  norm = speedrun.frozen_scale_batch_norm(3, rngs=nnx.Rngs(0))
  x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 5, 5, 3))
  norm(jnp.asarray(x, jnp.float32), use_running_average=False)
  flat = x.reshape(-1, 3)
  np.testing.assert_allclose(np.asarray(norm.mean[...]), 0.4 * flat.mean(0), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(norm.var[...]), 0.6 + 0.4 * flat.var(0, ddof=1), rtol=1e-5)
  assert norm.epsilon == 1e-12


def _train(config, net, num_steps: int = 3):
  """`num_steps` train steps of `net` on random batches under `config`'s optimizer; returns (before, after)."""
  graphdef, params, model_state = steps.split_model(net)
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, steps_per_epoch=2))
  state = steps.TrainState(jnp.zeros((), jnp.int32), params, model_state, tx.init(params), optim.init_plateau())
  step = jax.jit(functools.partial(steps.train_step, graphdef, tx, steps.StepConfig(), seed=0))
  rng = np.random.default_rng(1)
  after = state
  for _ in range(num_steps):
    batch = {'image': jnp.asarray(_images(8, seed=int(rng.integers(99)))), 'label': jnp.asarray(rng.integers(0, 10, 8))}
    after, _ = step(after, batch)
  return state, after


@pytest.mark.parametrize('optimizer', ['muon', 'sgd'])
def test_frozen_batchnorm_scale_and_whitening_kernel_stay_frozen_while_the_rest_trains(optimizer):
  config = helpers.override(
      speedrun_config.get_config(), **{'optimizer.name': optimizer, 'optimizer.learning_rate': 0.1}
  )
  net = _tiny_net()
  net.init_from_data(jnp.asarray(_images(16)))
  before, after = _train(config, net)
  scales = lambda s: [v for path, v in nnx.to_flat_state(s.model_state) if path[-1] == 'scale']
  assert len(scales(after)) == 2 * len(TINY_WIDTHS)
  for scale in scales(after):
    np.testing.assert_array_equal(np.asarray(scale[...]), 1.0)
  np.testing.assert_array_equal(
      np.asarray(after.model_state['whiten']['kernel'][...]), np.asarray(before.model_state['whiten']['kernel'][...])
  )
  for (path, old), (_, new) in zip(nnx.to_flat_state(before.params), nnx.to_flat_state(after.params)):
    assert not np.allclose(np.asarray(old[...]), np.asarray(new[...])), path  # every trained parameter moved


# --- the muon optimizer ---


def _muon_config(**overrides):
  return helpers.override(
      default.get_config(),
      **{
          'optimizer.name': 'muon',
          'optimizer.muon_dtype': 'float32',
          'optimizer.momentum': 0.9,
          'optimizer.nesterov': True,
          'schedule.name': 'constant',
          'num_epochs': 4,
          **overrides,
      },
  )


def _numpy_newton_schulz(g: np.ndarray, steps_: int) -> np.ndarray:
  """Muon's quintic Newton-Schulz iteration (coefficients 3.4445, -4.7750, 2.0315) on [rows, cols], float64."""
  x = g.T if g.shape[0] > g.shape[1] else g
  x = x / (np.linalg.norm(x) + 1e-7)
  for _ in range(steps_):
    gram = x @ x.T
    x = 3.4445 * x + (-4.7750 * gram + 2.0315 * gram @ gram) @ x
  return x.T if g.shape[0] > g.shape[1] else x


@pytest.mark.parametrize('shape', [(3, 3, 4, 6), (3, 3, 1, 16)])  # [out, in*9] wide, then tall
def test_muon_step_of_a_conv_kernel_is_newton_schulz_of_the_torch_shaped_nesterov_momentum(shape):
  lr, momentum, ns = 0.24, 0.6, 3
  config = _muon_config(
      **{'optimizer.muon_learning_rate': lr, 'optimizer.muon_momentum': momentum, 'optimizer.muon_ns_steps': ns}
  )
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 1))
  rng = np.random.default_rng(0)
  p = rng.normal(size=shape)
  params = {'conv': {'kernel': jnp.asarray(p, jnp.float32)}}
  state = tx.init(params)
  buf = np.zeros(shape)
  for _ in range(3):
    g = rng.normal(size=shape)
    updates, state = tx.update({'conv': {'kernel': jnp.asarray(g, jnp.float32)}}, state, params)
    params = optax.apply_updates(params, updates)
    # airbench's Muon step on torch's [out, in, kh, kw] weight, flattened to [out, in * kh * kw]
    buf = momentum * buf + g
    torch_update = (g + momentum * buf).transpose(3, 2, 0, 1)
    step = _numpy_newton_schulz(torch_update.reshape(shape[3], -1), ns).reshape(torch_update.shape)
    p = p * np.sqrt(shape[3]) / np.linalg.norm(p) - lr * step.transpose(2, 3, 1, 0)
    np.testing.assert_allclose(np.asarray(params['conv']['kernel']), p, rtol=2e-4, atol=2e-5)


def test_parameter_split_gives_every_parameter_exactly_one_optimizer():
  _, params, _ = steps.split_model(_tiny_net())
  labels = dict(nnx.to_flat_state(jax.tree_util.tree_map_with_path(optim.muon_label, params)))
  expected = {}
  for path, value in nnx.to_flat_state(params):
    if path[0] == 'whiten':
      expected[path] = 'whiten'
    elif path[0] == 'head':
      expected[path] = 'head'
    else:
      expected[path] = 'filters' if path[-1] == 'kernel' and 'conv' in str(path[-2]) else 'other'
  assert {p: labels[p] for p in expected} == expected
  assert set(expected.values()) == {'filters', 'whiten', 'head', 'other'}
  # In the optimizer's state each parameter is held by exactly one group (the others hold a MaskedNode).
  tx = optim.create_optimizer(_muon_config(), optim.create_learning_rate_fn(_muon_config(), 1))
  inner = tx.init(params)[-1].inner_states
  for path, _ in nnx.to_flat_state(params):
    holders = [label for label, group in inner.items() if _holds(group.inner_state, path)]
    assert holders == [expected[path]], path


def _holds(inner_state, path) -> bool:
  """Whether a masked optimizer state holds an array (not a MaskedNode) for the parameter at `path`."""
  for node in jax.tree.leaves(inner_state, is_leaf=lambda x: isinstance(x, nnx.State)):
    if isinstance(node, nnx.State):
      leaf = dict(nnx.to_flat_state(node)).get(path)
      if leaf is not None and not isinstance(
          leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf, optax.MaskedNode
      ):
        return True
  return False


def test_whitening_bias_rate_decays_to_zero_over_its_epochs_then_stays_zero():
  config = _muon_config(**{'optimizer.momentum': 0.0, 'optimizer.nesterov': False, 'optimizer.weight_decay': 0.0})
  config.optimizer.whiten_bias_epochs = 1.0
  config.optimizer.learning_rate = 0.5
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, steps_per_epoch=4))
  params = {'whiten': {'bias': jnp.zeros(2)}, 'norm': {'bias': jnp.zeros(2)}}
  state = tx.init(params)
  moves = []
  for _ in range(6):
    updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    moves.append((float(updates['whiten']['bias'][0]), float(updates['norm']['bias'][0])))
  np.testing.assert_allclose([m[0] for m in moves], [-0.5, -0.375, -0.25, -0.125, 0.0, 0.0])
  np.testing.assert_allclose([m[1] for m in moves], [-0.5] * 6)  # constant schedule: the other biases keep theirs


# --- alternating flip ---


def _asymmetric(count: int) -> np.ndarray:
  return np.random.default_rng(3).random((count, 4, 4, 3)).astype(np.float32)


def _flipped(out: np.ndarray, images: np.ndarray) -> np.ndarray:
  """Which outputs are their image mirrored (each must be the image itself or its mirror)."""
  mirrored = np.array([np.allclose(o, i[:, ::-1], atol=1e-6) for o, i in zip(out, images)])
  same = np.array([np.allclose(o, i, atol=1e-6) for o, i in zip(out, images)])
  assert np.all(mirrored ^ same)
  return mirrored


def test_alternating_flip_mirrors_each_example_on_every_other_epoch_jax():
  images = _asymmetric(64)
  index = np.arange(64, dtype=np.int32)
  flips = [_flipped(np.asarray(augment_jax.alternating_flip(Examples(7, e, index), images)), images) for e in range(4)]
  assert 16 < flips[0].sum() < 48  # a fair coin per example
  np.testing.assert_array_equal(flips[1], ~flips[0])
  np.testing.assert_array_equal(flips[2], flips[0])
  np.testing.assert_array_equal(flips[3], ~flips[0])
  order = np.random.default_rng(0).permutation(64).astype(np.int32)  # the coin follows the example, not its slot
  moved = _flipped(np.asarray(augment_jax.alternating_flip(Examples(7, 0, order), images[order])), images[order])
  np.testing.assert_array_equal(moved, flips[0][order])
  other_seed = _flipped(np.asarray(augment_jax.alternating_flip(Examples(8, 0, index), images)), images)
  assert not np.array_equal(other_seed, flips[0])


def test_alternating_flip_mirrors_each_example_on_every_other_epoch_tf():
  tf = augment_tf.tf
  images = _asymmetric(48)

  def flips(seed, epoch):
    out = [
        augment_tf.alternating_flip(Examples(seed, epoch, i), tf.constant(image)).numpy()
        for i, image in enumerate(images)
    ]
    return _flipped(np.stack(out), images)

  first = flips(7, 0)
  assert 12 < first.sum() < 36
  np.testing.assert_array_equal(flips(7, 1), ~first)
  np.testing.assert_array_equal(flips(7, 2), first)
  assert not np.array_equal(flips(8, 0), first)


def _identified(count: int) -> cifar10.Cifar10:
  """Asymmetric uint8 images whose label is their index, so each augmented image can be traced to its source."""
  images = (np.random.default_rng(0).random((count, 32, 32, 3)) * 255).astype(np.uint8)
  split = cifar10.Split(images, np.arange(count, dtype=np.int32))
  return cifar10.Cifar10(train=split, val=None, test=split)


def _epoch_flips(batches, data: cifar10.Cifar10) -> dict[int, bool]:
  flips = {}
  for batch in batches:
    for image, label in zip(np.asarray(batch['image']), np.asarray(batch['label'])):
      source = data.train.images[int(label)].astype(np.float32) / 255
      flips[int(label)] = bool(_flipped(image[None], source[None])[0])
  return flips


@pytest.mark.parametrize('pipeline', ['device', 'tfdata'])
def test_alternating_flip_through_the_pipeline_mirrors_every_image_in_the_next_epoch(pipeline):
  data = _identified(32)
  config = helpers.override(
      default.get_config(),
      **{'batch_size': 8, 'eval_batch_size': 8, 'data.normalize': False, 'augment.ops': ('alternating_flip',)},
  )
  if pipeline == 'device':
    source = device.DevicePipeline(data, config, jax.make_mesh((1,), ('data',)))
  else:
    source = tfdata.TfDataPipeline(data, config)
  epochs = [_epoch_flips(source.train_batches(e), data) for e in range(3)]
  assert sorted(epochs[0]) == list(range(32))
  assert 6 < sum(epochs[0].values()) < 26
  assert all(epochs[1][i] != epochs[0][i] and epochs[2][i] == epochs[0][i] for i in range(32))


@pytest.mark.parametrize('backend', ['jax', 'tf'])
def test_reflect_padded_crop_is_numpy_reflect_pad_then_window(backend):
  images = _asymmetric(6)
  offsets = np.array([[0, 0], [4, 4], [0, 4], [4, 0], [2, 1], [3, 2]], np.int32)
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')  # torch's 'reflect': edge not repeated
  expected = np.stack([p[t : t + 4, l : l + 4] for p, (t, l) in zip(padded, offsets)])
  if backend == 'jax':
    out = np.asarray(augment_jax.crop(images, 2, offsets, 'reflect'))
  else:
    tf = augment_tf.tf
    out = np.stack(
        [augment_tf.crop_at(tf.constant(i), 2, tf.constant(o), 'reflect').numpy() for i, o in zip(images, offsets)]
    )
  np.testing.assert_array_equal(out, expected)


# --- test-time augmentation ---


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
  """Index into a row of `size` pixels mirrored at its ends, edge not repeated: -1 -> 1, size -> size - 2."""
  return np.where(index < 0, -index, np.where(index >= size, 2 * (size - 1) - index, index))


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """out[y, x] = images[reflect(y + dy), reflect(x + dx)]."""
  height, width = images.shape[1:3]
  rows, cols = _reflect(np.arange(height) + dy, height), _reflect(np.arange(width) + dx, width)
  return images[:, rows][:, :, cols]


@pytest.mark.parametrize('level', [0, 1, 2])
def test_tta_logits_are_airbenchs_weighted_mean_of_the_views(level):
  rng = np.random.default_rng(0)
  weights = rng.normal(size=(6 * 5 * 3, 4))
  images = rng.normal(size=(3, 6, 5, 3))
  model = lambda x: x.reshape(x.shape[0], -1) @ weights
  mirror = lambda x: x[:, :, ::-1]
  views = {
      0: [(1.0, images)],
      1: [(0.5, images), (0.5, mirror(images))],
      2: [(0.25, images), (0.25, mirror(images))]
      + [(0.125, v) for s in (-1, 1) for v in (_shifted(images, s, s), mirror(_shifted(images, s, s)))],
  }[level]
  expected = sum(w * model(v) for w, v in views)
  jax_model = lambda x: x.reshape(x.shape[0], -1) @ jnp.asarray(weights, jnp.float32)
  out = steps.tta_logits(jax_model, jnp.asarray(images, jnp.float32), level)
  np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)


def test_eval_step_scores_the_tta_logits():
  net = _tiny_net()
  graphdef, params, model_state = steps.split_model(net)
  state = steps.TrainState(jnp.zeros((), jnp.int32), params, model_state, (), optim.init_plateau())
  images = jnp.asarray(_images(6))
  labels = jnp.arange(6) % 10
  batch = {'image': images, 'label': labels, 'mask': jnp.ones(6, bool)}
  metrics = steps.eval_step(graphdef, steps.StepConfig(tta=1), state, batch).compute()
  logits = (np.asarray(net(images)) + np.asarray(net(images[:, :, ::-1]))) / 2  # the model's own logits, by hand
  log_softmax = (
      logits
      - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
      - logits.max(1, keepdims=True)
  )
  np.testing.assert_allclose(float(metrics['loss']), -log_softmax[np.arange(6), labels].mean(), rtol=1e-4)


# --- the benchmark ---


def test_speedrun_benchmark_quick_mode_runs_and_writes_its_table(tmp_path, cifar10_dir):
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''}  # one CPU device, as the benchmark is meant for
  command = [sys.executable, 'benchmarks/speedrun.py', '--quick', f'--out={tmp_path}', f'--data-dir={cifar10_dir}']
  done = subprocess.run(command, cwd=helpers.REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((tmp_path / 'speedrun.json').read_text())
  runs = [row for row in results['rows'] if row['run'] != 'warm-up']
  assert [row['seed'] for row in runs] == [0] and 0.0 <= runs[0]['test_accuracy'] <= 1.0 and runs[0]['seconds'] > 0
  assert results['summary']['runs'] == 1 and results['quick']
  table = [line for line in (tmp_path / 'speedrun.md').read_text().splitlines() if line.startswith('| ')]
  assert len(table) == 3  # header, warm-up, run 1


@pytest.mark.parametrize(
    'key, value',
    [
        ('muon_learning_rate', 0.0),
        ('muon_ns_steps', 0),
        ('muon_dtype', 'float16'),
        ('muon_momentum', -0.1),
        ('head_learning_rate', -1.0),
        ('whiten_bias_epochs', -1.0),
    ],
)
def test_bad_muon_settings_name_the_key(key, value):
  with pytest.raises(ConfigError, match=f'optimizer.{key}'):
    config_check.check_optim_config(_muon_config(**{f'optimizer.{key}': value}))
