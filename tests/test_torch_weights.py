"""A PyTorch state_dict loads into every model family: numpy references in torch's layout (kuangliu's ResNet
among them, also after nnx transforms), training checkpoints unwrapped, .npz and .pth files, and torch if present."""

import sys

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import numpy_torch
from cifar_jax.errors import UserError
from cifar_jax.models import create_model, torch_weights
from cifar_jax.training import experiment

# The torch state_dict of the 60-minute-blitz Net, in its registration order.
BLITZ_SHAPES = [
    ('conv1.weight', (6, 3, 5, 5)),
    ('conv1.bias', (6,)),
    ('conv2.weight', (16, 6, 5, 5)),
    ('conv2.bias', (16,)),
    ('fc1.weight', (120, 400)),
    ('fc1.bias', (120,)),
    ('fc2.weight', (84, 120)),
    ('fc2.bias', (84,)),
    ('fc3.weight', (10, 84)),
    ('fc3.bias', (10,)),
]


def _logits(name, sd, x_nchw):
  model = create_model(name, rngs=nnx.Rngs(0))
  torch_weights.load_state_dict(model, sd)
  return np.asarray(model(jnp.asarray(x_nchw.transpose(0, 2, 3, 1), jnp.float32), train=False))


def test_blitz_cnn_matches_a_torch_layout_reference():
  """Conv kernels OIHW and the (c, h, w) flatten before fc1, as torch's Net from the 60-minute blitz computes."""
  sd = numpy_torch.random_state_dict(BLITZ_SHAPES)
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  relu = lambda v: np.maximum(v, 0)  # noqa: E731
  h = numpy_torch.max_pool(relu(numpy_torch.conv(x, sd['conv1.weight'], sd['conv1.bias'])))
  h = numpy_torch.max_pool(relu(numpy_torch.conv(h, sd['conv2.weight'], sd['conv2.bias']))).reshape(
      2, -1
  )  # torch.flatten: (c, h, w)
  for i in (1, 2):
    h = relu(h @ sd[f'fc{i}.weight'].T + sd[f'fc{i}.bias'])
  expected = h @ sd['fc3.weight'].T + sd['fc3.bias']
  np.testing.assert_allclose(_logits('tutorial_cnn', sd, x), expected, rtol=1e-4, atol=1e-4)


def test_upv_cnn_matches_a_torch_layout_reference_with_batchnorm_statistics():
  widths, shapes, cin = (32, 64, 128, 256, 512), [], 3
  for i, w in enumerate(widths):
    shapes += [(f'body.{i}.conv.weight', (w, cin, 3, 3)), (f'body.{i}.conv.bias', (w,))]
    shapes += [(f'body.{i}.bn.{k}', (w,)) for k in ('weight', 'bias', 'running_mean', 'running_var')]
    shapes += [(f'body.{i}.bn.num_batches_tracked', ())]
    cin = w
  shapes += [('fc1.weight', (512, 512)), ('fc1.bias', (512,)), ('fc2.weight', (10, 512)), ('fc2.bias', (10,))]
  sd = numpy_torch.random_state_dict(shapes)
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  h = x
  for i in range(len(widths)):
    h = numpy_torch.max_pool(
        np.maximum(
            numpy_torch.batch_norm_eval(
                numpy_torch.conv(h, sd[f'body.{i}.conv.weight'], sd[f'body.{i}.conv.bias']), sd, f'body.{i}.bn'
            ),
            0,
        )
    )
  h = np.maximum(h.reshape(2, -1) @ sd['fc1.weight'].T + sd['fc1.bias'], 0)
  expected = h @ sd['fc2.weight'].T + sd['fc2.bias']
  np.testing.assert_allclose(_logits('upv_cnn', sd, x), expected, rtol=1e-4, atol=1e-4)


def test_a_state_dict_of_another_architecture_is_refused_naming_the_layer():
  sd = numpy_torch.random_state_dict(
      [('conv1.weight', (6, 3, 3, 3)), *BLITZ_SHAPES[1:]]
  )  # 3x3 where torch's net has 5x5
  with pytest.raises(UserError, match='conv1.weight'):
    torch_weights.load_state_dict(create_model('tutorial_cnn', rngs=nnx.Rngs(0)), sd)
  with pytest.raises(UserError, match='layers'):
    torch_weights.load_state_dict(create_model('mlp', rngs=nnx.Rngs(0)), sd)


@pytest.fixture(scope='module')
def resnet10():
  """Our ResNet of kuangliu's layout at width 4, built by its constructor and as a run builds it: one nnx.jit call,
  then split into a TrainState and merged back (as the steps do). Each test loads all of its weights anew."""
  build = lambda: create_model('resnet18', width=4, stage_sizes=(1, 1, 1, 1), rngs=nnx.Rngs(0))  # noqa: E731
  graphdef, state = experiment.create_train_state(nnx.jit(build)(), optax.sgd(0.1))
  return {'constructor': build(), 'train_state': nnx.merge(graphdef, state.params, state.model_state)}


def _logits_of(model, checkpoint, x):
  torch_weights.load_state_dict(model, checkpoint)
  return np.asarray(nnx.jit(lambda m, v: m(v, train=False))(model, jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32)))


@pytest.mark.parametrize('model_from', ['constructor', 'train_state'])
def test_kuangliu_resnet_matches_its_torch_layout_reference_after_nnx_transforms(resnet10, model_from):
  sd = numpy_torch.random_state_dict(numpy_torch.kuangliu_shapes())
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  np.testing.assert_allclose(
      _logits_of(resnet10[model_from], sd, x), numpy_torch.kuangliu_forward(sd, x), rtol=1e-4, atol=1e-4
  )


@pytest.mark.parametrize(
    'wrap',
    [
        lambda sd: {'net': sd, 'acc': 91.5, 'epoch': 3},  # kuangliu's main.py
        lambda sd: {'net': {f'module.{k}': v for k, v in sd.items()}, 'acc': 91.5, 'epoch': 3},  # with DataParallel
        lambda sd: {'epoch': 3, 'model_state_dict': sd, 'optimizer_state_dict': {'state': {}}},  # the PyTorch tutorial
        lambda sd: {'state_dict': sd, 'global_step': 10},
        lambda sd: {'model': sd},
    ],
)
def test_a_training_checkpoint_loads_as_its_state_dict(resnet10, wrap):
  sd = numpy_torch.random_state_dict(numpy_torch.kuangliu_shapes(), seed=2)
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  logits = _logits_of(resnet10['train_state'], wrap(sd), x)
  np.testing.assert_allclose(logits, numpy_torch.kuangliu_forward(sd, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    'checkpoint, said',
    [
        ({'acc': 91.5, 'epoch': 3}, "got a dict with keys 'acc', 'epoch'"),
        ({'net': 'resnet18', 'acc': 91.5}, "got a dict with keys 'net', 'acc'"),
        ([np.zeros(3)], 'got a builtins.list'),
        ({}, 'got an empty mapping'),
    ],
)
def test_what_holds_no_state_dict_is_said_in_one_line(checkpoint, said):
  with pytest.raises(UserError, match=said) as raised:
    torch_weights.extract_state_dict(checkpoint)
  assert "'net'" in str(raised.value) and '\n' not in str(raised.value)


def test_an_npz_state_dict_reads_without_torch(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch raises ImportError
  sd = numpy_torch.random_state_dict(numpy_torch.kuangliu_shapes())
  np.savez(tmp_path / 'w.npz', **{f'module.{k}': v for k, v in sd.items()})
  read = torch_weights.read_state_dict(tmp_path / 'w.npz')
  assert list(read) == list(sd)
  for key, value in sd.items():
    np.testing.assert_array_equal(read[key], value)
  (tmp_path / 'w.pth').write_bytes(b'')
  with pytest.raises(UserError, match=r"w.pth: reading a PyTorch file needs torch \(pip install -e '.\[torch\]'\)"):
    torch_weights.read_state_dict(tmp_path / 'w.pth')
  with pytest.raises(UserError, match='must end in .pth, .pt, .npz'):
    torch_weights.read_state_dict(tmp_path / 'w.ckpt')
  with pytest.raises(UserError, match='missing.npz: no such file'):
    torch_weights.read_state_dict(tmp_path / 'missing.npz')
  (tmp_path / 'broken.npz').write_bytes(b'not a zip')
  with pytest.raises(UserError, match='broken.npz: not a readable .npz'):
    torch_weights.read_state_dict(tmp_path / 'broken.npz')


def _twins():
  try:
    import torch_twins  # noqa: PLC0415 (needs torch)
  except ImportError:
    return []
  return list(torch_twins.TWINS)


@pytest.mark.parametrize(
    'key',
    _twins()
    or [
        pytest.param(
            None,
            marks=pytest.mark.skip(
                reason='torch is not installed (pip install ".[torch]"): the logits comparison with PyTorch twins is skipped'
            ),
        )
    ],
)
def test_torch_twin_gives_the_same_logits(key):
  import torch  # noqa: PLC0415
  import torch_twins  # noqa: PLC0415

  twin = torch_twins.build(key)
  torch.manual_seed(1)
  x = torch.randn(4, 3, 32, 32)
  with torch.no_grad():
    expected = twin(x).numpy()
  name, options = key
  model = create_model(name, rngs=nnx.Rngs(0), **dict(options))
  torch_weights.load_state_dict(model, {k: v.numpy() for k, v in twin.state_dict().items()})
  logits = np.asarray(model(jnp.asarray(x.numpy().transpose(0, 2, 3, 1)), train=False))
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
