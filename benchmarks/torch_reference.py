"""The CIFAR ResNet-18 and VGG-16 of cifar_jax written in PyTorch, timed as benchmarks/throughput.py times ours.

    python benchmarks/torch_reference.py --models=resnet18 --batch-sizes=128,512,1024
    python benchmarks/torch_reference.py --quick      # a tiny ResNet on CPU, in seconds

The kuangliu/pytorch-cifar layouts (ResNet: 3x3 stem, no max pool, basic blocks, global average
pool; VGG: 3x3 conv + BatchNorm + ReLU stages, 2x2 max pools, one Linear), trained by SGD with
momentum 0.9 and weight decay 5e-4 on one synthetic batch already on the device (throughput.py's
`synthetic` pipeline), channels_last, bfloat16 autocast for dtype bfloat16, eager and `torch.compile`.
`throughput.py --torch` calls `benchmark` in its own process, so the ratio ours/torch is measured in
one run on one machine. PyTorch is not a dependency of cifar_jax: install it to use this file.
"""

import argparse
import json
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
MODES = ('eager', 'compile')
NUM_CLASSES = 10
# The tiny grid of throughput.py --quick (torch.compile is left out: it takes about 40 s on a small CPU).
QUICK = {
    'models': ['resnet18'],
    'model_kwargs': {'width': 8, 'stage_sizes': [1]},
    'batch_sizes': [16],
    'dtypes': ['bfloat16'],
    'modes': ['eager'],
    'steps': 4,
    'reps': 2,
}


class BasicBlock(nn.Module):
  """Two 3x3 conv + BN, a 1x1 projection shortcut (with BN unless `shortcut_norm` is False) where the shape
  changes, ReLU after the sum; `bias` adds conv biases (the UPV report's blocks have them)."""

  def __init__(self, in_planes: int, planes: int, stride: int = 1, bias: bool = False, shortcut_norm: bool = True):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=bias)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=bias)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or in_planes != planes:
      norm = [nn.BatchNorm2d(planes)] if shortcut_norm else []
      self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=bias), *norm)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
    out = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
  """CIFAR ResNet: 3x3 stem, stages of basic blocks (widths width * 2**i, stride 2 from stage 2), GAP, Linear."""

  def __init__(self, stage_sizes: Sequence[int] = (2, 2, 2, 2), width: int = 64):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
    blocks, channels = [], width
    for stage, num_blocks in enumerate(stage_sizes):
      for block in range(num_blocks):
        blocks.append(BasicBlock(channels, width * 2**stage, 2 if stage > 0 and block == 0 else 1))
        channels = width * 2**stage
    self.blocks = nn.Sequential(*blocks)
    self.linear = nn.Linear(channels, NUM_CLASSES)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """Images [N, 3, 32, 32] -> logits [N, 10]."""
    return self.linear(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class VGG(nn.Module):
  """VGG with BatchNorm: stages of 3x3 conv (with bias) + BN + ReLU, each then 2x2 max pooled; flatten, Linear."""

  def __init__(self, stages: Sequence[Sequence[int]] = VGG16):
    super().__init__()
    layers, channels = [], 3
    for widths in stages:
      for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
      layers.append(nn.MaxPool2d(2))
    self.body = nn.Sequential(*layers)
    self.linear = nn.Linear(channels * (32 // 2 ** len(stages)) ** 2, NUM_CLASSES)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """Images [N, 3, 32, 32] -> logits [N, 10]."""
    return self.linear(self.body(x).flatten(1))


MODELS = {'resnet18': ResNet, 'vgg16': VGG}


def benchmark(
    model_name: str, batch_size: int, *, dtype: str, mode: str, steps: int, reps: int, model_kwargs: dict | None = None
) -> dict:
  """Images/s of the SGD train step (median of `reps` runs of `steps` steps, after a warm-up), as a table row."""
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  torch.backends.cudnn.benchmark = True
  torch.manual_seed(0)
  model = MODELS[model_name](**(model_kwargs or {})).to(device, memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
  forward = torch.compile(model) if mode == 'compile' else model
  images = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
  labels = torch.randint(0, NUM_CLASSES, (batch_size,), device=device)

  def run(num_steps: int) -> float:
    """Seconds for `num_steps` train steps, to the device finishing them."""
    start = time.perf_counter()
    for _ in range(num_steps):
      optimizer.zero_grad(set_to_none=True)
      with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == 'bfloat16'):
        loss = F.cross_entropy(forward(images), labels)
      loss.backward()
      optimizer.step()
    if device.type == 'cuda':
      torch.cuda.synchronize()
    return time.perf_counter() - start

  if device.type == 'cuda':
    torch.cuda.reset_peak_memory_stats()
  first = run(1)  # Compilation (torch.compile) or autotuning (cuDNN) happen here.
  run(steps)
  median = statistics.median(run(steps) for _ in range(reps))
  peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == 'cuda' else None
  return {
      'model': model_name,
      'batch_size': batch_size,
      'dtype': dtype,
      'parallelism': f'torch {mode}',
      'pipeline': 'synthetic',
      'images_per_s': steps * batch_size / median,
      'epoch_s': median,
      'compile_s': max(first - median / steps, 0.0),
      'peak_memory_gib': peak,
  }


def main() -> None:
  """Runs the grid given on the command line and prints one JSON row per benchmark."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--models', default='resnet18', help='comma-separated: resnet18, vgg16')
  parser.add_argument('--model-kwargs', default='{}', help='JSON keyword arguments for every model')
  parser.add_argument('--batch-sizes', default='128,512,1024')
  parser.add_argument('--dtypes', default='bfloat16', help='comma-separated: float32, bfloat16')
  parser.add_argument('--modes', default='eager,compile', help='comma-separated: eager, compile')
  parser.add_argument('--steps', type=int, default=50, help='train steps per timed repetition')
  parser.add_argument('--reps', type=int, default=5)
  parser.add_argument('--quick', action='store_true', help='a tiny grid that runs in seconds on CPU')
  args = parser.parse_args()
  grid = (
      QUICK
      if args.quick
      else {
          'models': args.models.split(','),
          'model_kwargs': json.loads(args.model_kwargs),
          'batch_sizes': [int(b) for b in args.batch_sizes.split(',')],
          'dtypes': args.dtypes.split(','),
          'modes': args.modes.split(','),
          'steps': args.steps,
          'reps': args.reps,
      }
  )
  for model in grid['models']:
    for batch_size in grid['batch_sizes']:
      for dtype in grid['dtypes']:
        for mode in grid['modes']:
          print(
              json.dumps(
                  benchmark(
                      model,
                      batch_size,
                      dtype=dtype,
                      mode=mode,
                      steps=grid['steps'],
                      reps=grid['reps'],
                      model_kwargs=grid['model_kwargs'],
                  )
              ),
              flush=True,
          )


if __name__ == '__main__':
  main()
