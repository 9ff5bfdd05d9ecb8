"""kuangliu/pytorch-cifar's ResNet and main.py, in small: trains in PyTorch and saves the checkpoint as main.py does.

    PYTHONPATH=.:/path/to/torch python tests/kuangliu.py --out=/tmp/kl/ckpt.pth --steps=300 --width=16

Its models/resnet.py (BasicBlock, ResNet with conv1, bn1, layer1-4, linear; `width` is its hard-coded 64) and
main.py's recipe: Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) after ToTensor, RandomCrop(32,
padding=4) and RandomHorizontalFlip (written with torch ops: torchvision is not needed), SGD lr 0.1, momentum 0.9,
weight decay 5e-4, the net wrapped in DataParallel (so its keys start with 'module.') and saved as
{'net': net.state_dict(), 'acc': acc, 'epoch': epoch}. It prints the test accuracy PyTorch measures.
"""

import argparse
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cifar_jax.data import cifar10

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, in_planes, planes, stride=1):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or in_planes != self.expansion * planes:
      self.shortcut = nn.Sequential(
          nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
          nn.BatchNorm2d(self.expansion * planes),
      )

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    out += self.shortcut(x)
    return F.relu(out)


class ResNet(nn.Module):

  def __init__(self, block, num_blocks, num_classes=10, width=64):
    super().__init__()
    self.in_planes = width
    self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
    self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
    self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
    self.layer4 = self._make_layer(block, 8 * width, num_blocks[3], stride=2)
    self.linear = nn.Linear(8 * width * block.expansion, num_classes)

  def _make_layer(self, block, planes, num_blocks, stride):
    strides = [stride] + [1] * (num_blocks - 1)
    layers = []
    for stride in strides:
      layers.append(block(self.in_planes, planes, stride))
      self.in_planes = planes * block.expansion
    return nn.Sequential(*layers)

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
    out = F.avg_pool2d(out, 4)
    out = out.view(out.size(0), -1)
    return self.linear(out)


def to_tensor(images: np.ndarray) -> torch.Tensor:
  """uint8 NHWC -> ToTensor: float NCHW in [0, 1]."""
  return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def normalize(x: torch.Tensor) -> torch.Tensor:
  """transforms.Normalize with main.py's statistics."""
  return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
  """RandomCrop(32, padding=4) (black padding) and RandomHorizontalFlip, per image, before Normalize."""
  padded = F.pad(x, (4, 4, 4, 4))
  offsets = torch.randint(0, 9, (len(x), 2), generator=generator)
  flips = torch.rand(len(x), generator=generator) < 0.5
  out = torch.stack([padded[i, :, r : r + 32, c : c + 32] for i, (r, c) in enumerate(offsets.tolist())])
  return torch.where(flips[:, None, None, None], out.flip(3), out)


def predictions(net: nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
  """The predicted class of each uint8 image, as main.py's test() computes them (eval mode, no grad)."""
  net.eval()
  with torch.no_grad():
    return np.concatenate(
        [
            net(normalize(to_tensor(images[i : i + batch_size]))).argmax(1).numpy()
            for i in range(0, len(images), batch_size)
        ]
    )


def train_and_save(
    out: pathlib.Path, data_dir: str | None, *, steps: int, width: int, batch_size: int, test_examples: int
) -> tuple[int, int, np.ndarray]:
  """Trains ResNet([1, 1, 1, 1]) at `width` for `steps` SGD steps, saves the checkpoint as main.py does, and
  returns (correct, total, predictions) on the first `test_examples` test images."""
  torch.manual_seed(0)
  data = cifar10.load(data_dir, max_eval_examples=test_examples)
  net = nn.DataParallel(ResNet(BasicBlock, [1, 1, 1, 1], width=width))  # main.py wraps it (on a GPU)
  optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
  generator = torch.Generator().manual_seed(0)
  net.train()
  for _ in range(steps):
    index = torch.randint(0, len(data.train), (batch_size,), generator=generator).numpy()
    inputs = normalize(augment(to_tensor(data.train.images[index]), generator))
    loss = F.cross_entropy(net(inputs), torch.from_numpy(data.train.labels[index]).long())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
  predicted = predictions(net, data.test.images)
  correct = int((predicted == data.test.labels).sum())
  out.parent.mkdir(parents=True, exist_ok=True)
  torch.save({'net': net.state_dict(), 'acc': 100.0 * correct / len(predicted), 'epoch': 0}, out)
  return correct, len(predicted), predicted


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, type=pathlib.Path)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--width', type=int, default=16)
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument('--test_examples', type=int, default=-1)
  args = parser.parse_args()
  correct, total, _ = train_and_save(
      args.out,
      args.data_dir,
      steps=args.steps,
      width=args.width,
      batch_size=args.batch_size,
      test_examples=args.test_examples,
  )
  print(f'PyTorch: test accuracy {100 * correct / total:.2f} % ({correct} of {total} images); saved {args.out}')


if __name__ == '__main__':
  main()
