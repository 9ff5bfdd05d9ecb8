"""PyTorch twins of every model family, written as the reports' and kuangliu/pytorch-cifar's modules are."""

import torch
from torch import nn

# The benchmark's ResNet and VGG are the twins of ours (the converter matches layers by order and shape, not
# names); its block, with the UPV options, builds the UPV report's residual networks below.
from benchmarks.torch_reference import VGG, BasicBlock, ResNet


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
    ('vgg11', ()): lambda: VGG(((64,), (128,), (256, 256), (512, 512), (512, 512))),
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
