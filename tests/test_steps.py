"""Train and eval steps: they learn, and jit over a mesh, pmap and one device give the same numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cifar_jax import parallel
from cifar_jax.training import experiment, optim, steps
from configs import default

BATCH = 16


def _config(model='resnet18', **model_kwargs):
  config = default.get_config()
  config.model.name = model
  config.model.update(model_kwargs)
  config.batch_size = BATCH
  config.num_epochs = 1
  config.optimizer.learning_rate = 0.05
  return config


def _tiny_resnet_config():
  return _config('resnet18', width=8, stage_sizes=(1, 1, 1, 1))


def _batch(seed=0, n=BATCH):
  rng = np.random.default_rng(seed)
  return {
      'image': rng.normal(size=(n, 32, 32, 3)).astype(np.float32),
      'label': rng.integers(0, 10, size=n).astype(np.int32),
  }


def _setup(config, axis_name=None):
  model = experiment.build_model(config)
  parallel.set_batch_axis(model, axis_name)
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, steps_per_epoch=10))
  graphdef, state = experiment.create_train_state(model, tx)
  cfg = steps.StepConfig(axis_name=axis_name)
  return steps.make_steps(graphdef, tx, cfg), state


def _run(dp, config, batches):
  (train_step, eval_step), state = _setup(config, dp.axis_name)
  train_step, eval_step = dp.compile_train(train_step), dp.compile_eval(eval_step)
  state, seed = dp.put_state(state), dp.put_state(np.int32(config.seed))
  losses = []
  for batch in batches:
    state, m = train_step(state, dp.put_batch(batch), seed)
    losses.append(float(dp.get_state(m).compute()['loss']))
  eval_batch = {**batches[0], 'mask': np.ones(BATCH, bool)}
  evaluation = dp.get_state(eval_step(state, dp.put_batch(eval_batch))).compute()
  return jax.device_get(dp.get_state(state)), losses, {k: float(v) for k, v in evaluation.items()}


class _OneDevice:
  """No parallelism at all: plain jit on the default device, the reference the others must match."""

  axis_name = None
  put_state = get_state = staticmethod(lambda tree: tree)
  put_batch = staticmethod(lambda batch: jax.tree.map(jnp.asarray, batch))
  compile_train = compile_eval = staticmethod(jax.jit)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
  config = _tiny_resnet_config()
  (train_step, _), state = _setup(config)
  train_step = jax.jit(train_step)
  batch = jax.tree.map(jnp.asarray, _batch())
  losses = []
  for _ in range(8):
    state, m = train_step(state, batch, config.seed)
    losses.append(float(m.compute()['loss']))
  assert losses[-1] < 0.5 * losses[0]
  assert int(state.step) == 8


def test_jit_pmap_and_single_device_agree():
  assert jax.device_count() == 4
  config = _tiny_resnet_config()
  batches = [_batch(seed) for seed in range(3)]

  results = {
      name: _run(dp, config, batches)
      for name, dp in (('jit', parallel.JitParallel()), ('pmap', parallel.PmapParallel()), ('single', _OneDevice()))
  }
  ref_state, ref_losses, ref_eval = results['single']
  for name in ('jit', 'pmap'):
    state, losses, evaluation = results[name]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, err_msg=name)
    # Three steps of lr 0.05 move a weight by about 1e-2; summing BatchNorm's statistics over 4 devices instead of
    # one batch moves it by up to 2e-4 on XLA's CPU backend (AMD EPYC), so 1e-3 still catches a missing pmean.
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3, err_msg=name)
    for a, b in zip(jax.tree.leaves(state.model_state), jax.tree.leaves(ref_state.model_state)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    assert evaluation == pytest.approx(ref_eval, rel=1e-4)


def test_eval_step_ignores_padded_examples():
  config = _tiny_resnet_config()
  (_, eval_step), state = _setup(config)
  batch = _batch()
  full = eval_step(state, {**batch, 'mask': np.ones(BATCH, bool)}).compute()
  half_mask = np.arange(BATCH) < BATCH // 2
  garbage = {**batch, 'mask': half_mask}
  garbage['image'][~half_mask] = 1e3
  half = eval_step(state, garbage).compute()
  first = {k: v[: BATCH // 2] for k, v in batch.items()}
  expected = eval_step(state, {**first, 'mask': np.ones(BATCH // 2, bool)}).compute()
  assert float(half['loss']) == pytest.approx(float(expected['loss']), rel=1e-5)
  assert float(half['accuracy']) == pytest.approx(float(expected['accuracy']))
  assert float(full['loss']) != pytest.approx(float(half['loss']))


def test_weight_penalty_sums_l1_and_l2_over_every_parameter():
  params = nnx.State({'a': nnx.Param(jnp.array([1.0, -2.0])), 'b': nnx.Param(jnp.array([[3.0]]))})
  assert float(steps.weight_penalty(params, l1=0.1, l2=0.0)) == pytest.approx(0.6)
  assert float(steps.weight_penalty(params, l1=0.0, l2=0.01)) == pytest.approx(0.14)


def test_label_smoothing_raises_the_loss_of_a_confident_correct_prediction():
  logits = jnp.array([[10.0, 0.0, 0.0]])
  plain = float(steps.cross_entropy(logits, jnp.array([0]))[0])
  smoothed = float(steps.cross_entropy(logits, jnp.array([0]), label_smoothing=0.1)[0])
  assert smoothed > plain


def test_bfloat16_compute_keeps_float32_parameters():
  config = _tiny_resnet_config()
  config.dtype = 'bfloat16'
  model = experiment.build_model(config)
  tx = optim.create_optimizer(config, optim.create_learning_rate_fn(config, 10))
  graphdef, state = experiment.create_train_state(model, tx)
  cfg = steps.StepConfig(dtype=jnp.bfloat16)
  train_step, _ = steps.make_steps(graphdef, tx, cfg)
  state, m = jax.jit(train_step)(state, jax.tree.map(jnp.asarray, _batch()), 0)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state.params))
  assert np.isfinite(float(m.compute()['loss']))
