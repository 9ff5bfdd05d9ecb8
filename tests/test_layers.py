"""The package's import rule: imports only run downward through the layers the folders name.

commands -> reproduce, cli -> study -> training -> data, models, parallel, devices, plotting, config_check -> config_lib
-> errors. A module may import its own layer or any layer below; never one above. Every import counts, including those
inside functions.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'cifar_jax'
COMMANDS = ('main', 'sweep', 'report', 'analysis', 'figures')
RANKS = {
    'errors': 0,
    'config_lib': 1,
    'config_check': 2,
    'data': 2,
    'models': 2,
    'parallel': 2,
    'devices': 2,
    'plotting': 2,
    'compile_cache': 2,
    'training': 3,
    'study': 4,
    'reproduce': 5,
    'cli': 5,
    **{command: 6 for command in COMMANDS},
}


def layer(module: str) -> str:
  """The layer of a dotted module name inside cifar_jax (`cifar_jax.training.steps` -> `training`)."""
  parts = module.split('.')
  assert parts[0] == 'cifar_jax' and len(parts) > 1, module
  assert parts[1] in RANKS, f'{module} is in no layer: add it to tests/test_layers.py RANKS'
  return parts[1]


def imported_modules(source: str) -> list[tuple[int, str]]:
  """(line, module) for every cifar_jax import of `source`; `from cifar_jax import x` counts as cifar_jax.x."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith('cifar_jax.')]
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] == 'cifar_jax':
      if node.module == 'cifar_jax':
        found += [(node.lineno, f'cifar_jax.{alias.name}') for alias in node.names]
      else:
        found.append((node.lineno, node.module))
  return found


def upward_imports(module: str, source: str) -> list[str]:
  """The imports of `source` (the text of `module`) that climb to a higher layer, as readable lines."""
  here = layer(module)
  return [
      f'{module}:{line} imports {target} ({layer(target)} is above {here})'
      for line, target in imported_modules(source)
      if RANKS[layer(target)] > RANKS[here]
  ]


def package_modules() -> list[tuple[str, pathlib.Path]]:
  """Every module of the package but its root __init__, with its dotted name."""
  modules = []
  for path in sorted(PACKAGE.rglob('*.py')):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    if parts[-1] == '__init__':
      parts = parts[:-1]
    if len(parts) > 1:
      modules.append(('.'.join(parts), path))
  return modules


def test_every_module_belongs_to_a_layer():
  assert {layer(module) for module, _ in package_modules()} == set(RANKS)


def test_no_import_climbs_a_layer():
  climbing = [line for module, path in package_modules() for line in upward_imports(module, path.read_text())]
  assert not climbing, 'imports against the layer rule:\n' + '\n'.join(climbing)


@pytest.mark.parametrize(
    ('module', 'source', 'climbs'),
    [
        ('cifar_jax.training.steps', 'from cifar_jax.study import stats', True),
        ('cifar_jax.data.cifar10', 'def f():\n  from cifar_jax import parallel, sweep\n', True),  # inside a function
        ('cifar_jax.config_lib', 'import cifar_jax.training.run_dir', True),
        ('cifar_jax.study.report', 'from cifar_jax.training import run_dir\nfrom cifar_jax import errors', False),
        ('cifar_jax.models.layers', 'from cifar_jax.data import cifar10', False),  # the same layer
        ('cifar_jax.sweep', 'from cifar_jax.reproduce import plan', False),
    ],
)
def test_the_rule_flags_an_upward_import(module, source, climbs):
  assert bool(upward_imports(module, source)) == climbs
