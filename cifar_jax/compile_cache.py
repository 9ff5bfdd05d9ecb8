"""JAX's persistent compilation cache, on for every command (cifar_jax/cli.py): a program compiled once is read back
from disk by every later run that lowers the same program (another seed of the same variant, a resumed run, the
next command), instead of compiling it again.

The cache folder is $CIFAR_JAX_CACHE, by default $XDG_CACHE_HOME/cifar_jax or ~/.cache/cifar_jax;
CIFAR_JAX_CACHE=off turns it off. A folder given to JAX itself ($JAX_COMPILATION_CACHE_DIR) is kept. Importing
this module does not import JAX.
"""

import os
import pathlib
import sys

CACHE_ENV = 'CIFAR_JAX_CACHE'
_OFF = ('off', 'none', '0', 'false', '')


def cache_dir() -> pathlib.Path | None:
  """The folder the cache lives in, or None when $CIFAR_JAX_CACHE turns it off."""
  value = os.environ.get(CACHE_ENV)
  if value is None:
    base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
    return pathlib.Path(base) / 'cifar_jax'
  return None if value.strip().lower() in _OFF else pathlib.Path(value).expanduser()


def enable_compilation_cache() -> pathlib.Path | None:
  """Turns the cache on for this process (JAX decides at its first compilation) and the processes it starts;
  returns its folder, or None when it is off. A folder that cannot be created turns it off, said in one line."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return pathlib.Path(os.environ['JAX_COMPILATION_CACHE_DIR'])
  path = cache_dir()
  if path is None:
    return None
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    print(f'compilation cache off: cannot create {path} ({e.strerror or e}); set {CACHE_ENV}', file=sys.stderr)
    return None
  # Every program is written, however fast it compiled: JAX's default keeps only those over 1 s, which leaves out
  # most CPU programs.
  os.environ['JAX_COMPILATION_CACHE_DIR'] = str(path)
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  if 'jax' in sys.modules:  # already imported: it read its environment then
    import jax  # pylint: disable=import-outside-toplevel

    jax.config.update('jax_compilation_cache_dir', str(path))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  return path
