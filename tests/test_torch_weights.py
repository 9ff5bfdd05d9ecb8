"""A PyTorch state_dict loads into every model family: numpy references in torch's layout, and torch if present."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cifar_jax.models import torch_weights
from cifar_jax.errors import UserError
from cifar_jax.models import create_model


def _conv(x, weight, bias):
  """torch.nn.Conv2d at stride 1 on NCHW with OIHW weights: padding 1 for 3x3 (as the UPV nets), none for 5x5."""
  k = weight.shape[-1]
  pad = 1 if k == 3 else 0
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  h, w = x.shape[2] - k + 1, x.shape[3] - k + 1
  out = np.zeros((x.shape[0], weight.shape[0], h, w))
  for i in range(k):
    for j in range(k):
      out += np.einsum('nchw,oc->nohw', x[:, :, i : i + h, j : j + w], weight[:, :, i, j])
  return out + bias[None, :, None, None]


def _max_pool(x):
  n, c, h, w = x.shape
  return x.reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))


def _batch_norm_eval(x, sd, prefix):
  shape = (1, -1, 1, 1)
  std = np.sqrt(sd[f'{prefix}.running_var'].reshape(shape) + 1e-5)
  normed = (x - sd[f'{prefix}.running_mean'].reshape(shape)) / std
  return normed * sd[f'{prefix}.weight'].reshape(shape) + sd[f'{prefix}.bias'].reshape(shape)


def _random_state_dict(shapes, seed=0):
  rng = np.random.default_rng(seed)
  sd = {}
  for key, shape in shapes:
    if key.endswith('running_var'):
      sd[key] = rng.uniform(0.5, 2.0, shape)
    elif key.endswith('num_batches_tracked'):
      sd[key] = np.array(7)
    else:
      sd[key] = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else 4), shape)
  return sd


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
  sd = _random_state_dict(BLITZ_SHAPES)
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  relu = lambda v: np.maximum(v, 0)  # noqa: E731
  h = _max_pool(relu(_conv(x, sd['conv1.weight'], sd['conv1.bias'])))
  h = _max_pool(relu(_conv(h, sd['conv2.weight'], sd['conv2.bias']))).reshape(2, -1)  # torch.flatten: (c, h, w)
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
  sd = _random_state_dict(shapes)
  x = np.random.default_rng(1).normal(size=(2, 3, 32, 32))
  h = x
  for i in range(len(widths)):
    h = _max_pool(
        np.maximum(
            _batch_norm_eval(_conv(h, sd[f'body.{i}.conv.weight'], sd[f'body.{i}.conv.bias']), sd, f'body.{i}.bn'), 0
        )
    )
  h = np.maximum(h.reshape(2, -1) @ sd['fc1.weight'].T + sd['fc1.bias'], 0)
  expected = h @ sd['fc2.weight'].T + sd['fc2.bias']
  np.testing.assert_allclose(_logits('upv_cnn', sd, x), expected, rtol=1e-4, atol=1e-4)


def test_a_state_dict_of_another_architecture_is_refused_naming_the_layer():
  sd = _random_state_dict([('conv1.weight', (6, 3, 3, 3)), *BLITZ_SHAPES[1:]])  # 3x3 where torch's net has 5x5
  with pytest.raises(UserError, match='conv1.weight'):
    torch_weights.load_state_dict(create_model('tutorial_cnn', rngs=nnx.Rngs(0)), sd)
  with pytest.raises(UserError, match='layers'):
    torch_weights.load_state_dict(create_model('mlp', rngs=nnx.Rngs(0)), sd)


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
