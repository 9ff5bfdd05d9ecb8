"""PyTorch's layers written out in numpy in torch's layout (NCHW, OIHW), and state_dicts of random weights: the
independent references that converted weights are checked against, with no torch needed."""

import numpy as np


def conv(x, weight, bias=None, stride=1):
  """torch.nn.Conv2d on NCHW with OIHW weights: padding 1 for 3x3 (as the UPV nets and kuangliu's), none for 1x1
  and 5x5."""
  k = weight.shape[-1]
  pad = 1 if k == 3 else 0
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  h, w = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
  out = np.zeros((x.shape[0], weight.shape[0], h, w))
  for i in range(k):
    for j in range(k):
      window = x[:, :, i : i + stride * (h - 1) + 1 : stride, j : j + stride * (w - 1) + 1 : stride]
      out += np.einsum('nchw,oc->nohw', window, weight[:, :, i, j])
  return out if bias is None else out + bias[None, :, None, None]


def max_pool(x):
  n, c, h, w = x.shape
  return x.reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))


def batch_norm_eval(x, sd, prefix):
  shape = (1, -1, 1, 1)
  std = np.sqrt(sd[f'{prefix}.running_var'].reshape(shape) + 1e-5)
  normed = (x - sd[f'{prefix}.running_mean'].reshape(shape)) / std
  return normed * sd[f'{prefix}.weight'].reshape(shape) + sd[f'{prefix}.bias'].reshape(shape)


def random_state_dict(shapes, seed=0):
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


# kuangliu/pytorch-cifar's ResNet (models/resnet.py) with one BasicBlock per stage and widths 4-32: its state_dict in
# registration order (conv1, bn1, layer1..4 of BasicBlocks conv1, bn1, conv2, bn2, shortcut.0 conv, shortcut.1 bn;
# linear), which a ResNet-10 of ours at width 4 takes.
KUANGLIU_WIDTHS = (4, 8, 16, 32)


def bn_shapes(prefix, width):
  return [(f'{prefix}.{k}', (width,)) for k in ('weight', 'bias', 'running_mean', 'running_var')] + [
      (f'{prefix}.num_batches_tracked', ())
  ]


def kuangliu_shapes():
  shapes, cin = [('conv1.weight', (4, 3, 3, 3)), *bn_shapes('bn1', 4)], 4
  for stage, width in enumerate(KUANGLIU_WIDTHS, 1):
    block = f'layer{stage}.0'
    shapes += [(f'{block}.conv1.weight', (width, cin, 3, 3)), *bn_shapes(f'{block}.bn1', width)]
    shapes += [(f'{block}.conv2.weight', (width, width, 3, 3)), *bn_shapes(f'{block}.bn2', width)]
    if cin != width:
      shapes += [(f'{block}.shortcut.0.weight', (width, cin, 1, 1)), *bn_shapes(f'{block}.shortcut.1', width)]
    cin = width
  return shapes + [('linear.weight', (10, 32)), ('linear.bias', (10,))]


def kuangliu_forward(sd, x):
  """kuangliu's ResNet.forward (and BasicBlock.forward) in eval mode, in numpy."""
  relu = lambda v: np.maximum(v, 0)  # noqa: E731
  out = relu(batch_norm_eval(conv(x, sd['conv1.weight']), sd, 'bn1'))
  for stage in range(1, 5):
    block, stride = f'layer{stage}.0', 1 if stage == 1 else 2
    y = relu(batch_norm_eval(conv(out, sd[f'{block}.conv1.weight'], stride=stride), sd, f'{block}.bn1'))
    y = batch_norm_eval(conv(y, sd[f'{block}.conv2.weight']), sd, f'{block}.bn2')
    if f'{block}.shortcut.0.weight' in sd:
      shortcut = conv(out, sd[f'{block}.shortcut.0.weight'], stride=stride)
      out = relu(y + batch_norm_eval(shortcut, sd, f'{block}.shortcut.1'))
    else:
      out = relu(y + out)
  out = out.mean(axis=(2, 3))  # F.avg_pool2d(out, 4) on the 4 x 4 map, then view
  return out @ sd['linear.weight'].T + sd['linear.bias']
