"""PyTorch twins of every model family, written as the reports' and kuangliu/pytorch-cifar's modules are."""

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.torch_reference import BasicBlock  # the benchmark's block, with the UPV options


class ResNet(nn.Module):

  def __init__(self, stage_sizes, width):
    super().__init__()
    self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    blocks, cin = [], width
    for stage, n in enumerate(stage_sizes):
      for block in range(n):
        blocks.append(BasicBlock(cin, width * 2**stage, 2 if stage and not block else 1))
        cin = width * 2**stage
    self.layers = nn.Sequential(*blocks)
    self.linear = nn.Linear(cin, 10)

  def forward(self, x):
    out = self.layers(F.relu(self.bn1(self.conv1(x))))
    return self.linear(out.mean((2, 3)))


def vgg(stages):
  body, cin = [], 3
  for widths in stages:
    for w in widths:
      body += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
      cin = w
    body.append(nn.MaxPool2d(2))
  size = 32 // 2 ** len(stages)
  return nn.Sequential(*body, nn.Flatten(), nn.Linear(cin * size * size, 10))


def lenet(c5_conv):
  body = [nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)]
  if c5_conv:
    return nn.Sequential(
        *body, nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
    )
  return nn.Sequential(
      *body, nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
  )


def mlp():
  return nn.Sequential(
      nn.Flatten(), nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
  )


class Res(nn.Module):
  """The UPV ResBlock: BasicBlock with biases and a 1x1 conv shortcut without BN."""

  def __init__(self, cin, cout):
    super().__init__()
    self.block = BasicBlock(cin, cout, bias=True, shortcut_norm=False)

  def forward(self, x):
    return self.block(x)


def upv(plan):
  body, cin, size = [], 3, 32
  for kind, n in plan:
    if kind == 'conv':
      body += [nn.Conv2d(cin, n, 3, padding=1), nn.BatchNorm2d(n), nn.ReLU(), nn.MaxPool2d(2)]
      cin, size = n, size // 2
    elif kind == 'res':
      body.append(Res(cin, n))
      cin = n
    else:
      body.append(nn.MaxPool2d(n) if kind == 'max' else nn.AvgPool2d(n))
      size //= n
  return nn.Sequential(*body, nn.Flatten(), nn.Linear(cin * size * size, 512), nn.ReLU(), nn.Linear(512, 10))


CNN = (('conv', 32), ('conv', 64), ('conv', 128), ('conv', 256), ('conv', 512))
RESNET = CNN[:3] + (('res', 256), ('res', 512))
TWINS = {  # our model name and options -> its PyTorch twin
    ('mlp', ()): mlp,
    ('lenet5', ()): lambda: lenet(True),
    ('tutorial_cnn', ()): lambda: lenet(False),
    ('vgg11', ()): lambda: vgg(((64,), (128,), (256, 256), (512, 512), (512, 512))),
    ('resnet18', (('width', 8),)): lambda: ResNet((2, 2, 2, 2), 8),
    ('upv_cnn', ()): lambda: upv(CNN),
    ('upv_resnet', ()): lambda: upv(RESNET),
    ('upv_resnet_avgpool', ()): lambda: upv(RESNET + (('avg', 4),)),
    ('upv_resnet_maxpool', ()): lambda: upv(
        (('res', 32), ('res', 64), ('res', 128), ('max', 4), ('res', 256), ('res', 512), ('avg', 8))
    ),
    ('upv_resnet_final', ()): lambda: upv(
        (('res', 32), ('res', 64), ('res', 128), ('max', 2), ('res', 256), ('max', 2), ('res', 512), ('avg', 8))
    ),
}


def build(key, seed=0):
  """The twin in eval mode, with random BatchNorm statistics and affine parameters so that they matter."""
  torch.manual_seed(seed)
  model = TWINS[key]()
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.running_mean.normal_(0, 0.2)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.2)
  return model.eval()
