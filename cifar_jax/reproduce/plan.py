"""What `python -m cifar_jax.reproduce` runs, in priority order, and the two reports' own figures per row.

`STUDIES` is the reports' order; `order_for` is the order the chain runs them in on a device: what that device
adds most, first. The figures below are the reports' (transcribed from shared/spec/experiments.md), never ours:
ours come from the run folders.
"""

import dataclasses
import pathlib
from collections.abc import Collection, Sequence

import ml_collections

from cifar_jax import config_lib
from cifar_jax.errors import ConfigError, UserError
from cifar_jax.study import expansion

DEFAULT_MARGIN_SECONDS = 60.0  # how long before --max-minutes the chain asks the run in progress to stop

# What --quick sets in every run (besides a tiny model and fewer variants and seeds: reproduce/chain.py)
QUICK_SETTINGS = (
    'num_epochs=1',
    'num_train_steps=-1',
    'data.max_train_examples=256',
    'data.max_eval_examples=128',
    'batch_size=32',
    'eval_batch_size=128',
    'log_every_steps=4',
)

REPORTS = {'upv': 'UPV: progressive pipeline', 'tp3': 'TP3: hyperparameter study'}


@dataclasses.dataclass(frozen=True)
class Study:
  """One sweep of the chain: its folder under the workdir (and its --only name), the report it belongs to, the
  sweep config, how many seeds each variant runs, and which of the sweep's variants (all when empty)."""

  name: str
  report: str
  sweep: str
  seeds: int = 1
  variants: tuple[str, ...] = ()
  title: str = ''

  def sweep_config(self, vectorize: bool = False) -> ml_collections.ConfigDict:
    """The sweep config that runs this study in full: its sweep file, its variants and seeds, with
    `vectorize='auto'` when asked (runs that differ only in seed or numbers train as one group)."""
    config = config_lib.load_config_file(self.sweep)
    if vectorize:
      config.vectorize = 'auto'
    if self.variants:
      config.variants = [e for e in config.variants if expansion.entry_name(e) in self.variants]
    config.seeds = self.seeds
    return config


@dataclasses.dataclass(frozen=True)
class Options:
  """What one invocation does, from the command line."""

  workdir: pathlib.Path
  data_dir: str | None = None
  quick: bool = False
  pipeline: str = 'device'
  max_minutes: float | None = None
  margin_seconds: float = DEFAULT_MARGIN_SECONDS
  command: str = ''
  extra_settings: tuple[str, ...] = ()
  vectorize: bool = False

  def settings(self) -> list[str]:
    """The --set lines every run of the chain gets; the user's own (--set) last, so that they win."""
    sets = [f'data.pipeline={self.pipeline}']
    if self.data_dir:
      sets.append(f'data.data_dir={self.data_dir}')
    return sets + (list(QUICK_SETTINGS) if self.quick else []) + list(self.extra_settings)


def check_sweeps(sweeps: Sequence[tuple[str, ml_collections.ConfigDict]], settings: Sequence[str]) -> None:
  """Refuses the first (study name, sweep config) one of whose runs, with `settings`, has a bad key, name or plain
  value, naming the study and the variant; needs no JAX, so a command can check every study first."""
  for name, sweep in sweeps:
    try:
      expansion.check_configs(sweep, settings)
    except ConfigError as e:
      raise ConfigError(f'{name}: {e}') from e


UPV_ROWS = ('1_cnn', '2_da_lra', '3_resnet', '4_avgpool', '5_maxpool', '6_resnet_final')

STUDIES: tuple[Study, ...] = (
    Study('tp3_dense', 'tp3', 'configs/sweeps/tp3_dense.py', seeds=5, title='TP3 stage 2: dense networks'),
    Study(
        'upv_final',
        'upv',
        'configs/sweeps/upv_progression.py',
        seeds=3,
        variants=UPV_ROWS[-1:],
        title='UPV row 6: ResNet Final',
    ),
    Study('tp3_final', 'tp3', 'configs/sweeps/tp3_final.py', seeds=3, title='TP3 final: all the winners'),
    Study('tp3_cnn', 'tp3', 'configs/sweeps/tp3_cnn.py', title='TP3 stage 3: convolutional networks'),
    Study('upv_progression', 'upv', 'configs/sweeps/upv_progression.py', variants=UPV_ROWS[:-1], title='UPV rows 1-5'),
    Study('tp3_activations', 'tp3', 'configs/sweeps/tp3_activations.py', title='TP3 stage 4: activations'),
    Study('tp3_optimizers', 'tp3', 'configs/sweeps/tp3_optimizers.py', title='TP3 stage 5a: optimizers'),
    Study('tp3_schedules', 'tp3', 'configs/sweeps/tp3_schedules.py', title='TP3 stage 5b: learning-rate schedules'),
    Study('tp3_regularizers', 'tp3', 'configs/sweeps/tp3_regularizers.py', title='TP3 stage 7: regularization'),
    Study(
        'tp3_hyperparameters',
        'tp3',
        'configs/sweeps/tp3_hyperparameters.py',
        title='TP3 stage 6: hyperparameter grid (24 random draws)',
    ),
)


@dataclasses.dataclass(frozen=True)
class UpvRow:
  """One row of the UPV report's Table 1: its label, our variant and study, its exact parameter count, and
  the report's best test accuracy (selected on the test set) with its epoch."""

  label: str
  variant: str
  study: str
  config: str
  params: int
  report_accuracy: float
  report_epoch: int


UPV_TABLE: tuple[UpvRow, ...] = (
    UpvRow('CNN', '1_cnn', 'upv_progression', 'configs/upv/cnn.py', 1_838_346, 82.11, 81),
    UpvRow('+DA +LRA', '2_da_lra', 'upv_progression', 'configs/upv/da_lra.py', 1_838_346, 87.5, 69),
    UpvRow('+ResNet', '3_resnet', 'upv_progression', 'configs/upv/resnet.py', 8_886_538, 88.86, 60),
    UpvRow('+AvgPool', '4_avgpool', 'upv_progression', 'configs/upv/avgpool.py', 4_954_378, 89.65, 74),
    UpvRow('+MaxPool', '5_maxpool', 'upv_progression', 'configs/upv/maxpool.py', 5_159_146, 91.74, 99),
    UpvRow('ResNet Final', '6_resnet_final', 'upv_final', 'configs/upv/resnet_final.py', 5_159_146, 92.64, 81),
)

# The TP3 report's word on each study: its winner (a variant name) and the figure it gives, if any.
TP3_REPORT: dict[str, tuple[str, str]] = {
    'tp3_dense': ('fc_hl_bigvalues', 'winner, no figure given'),
    'tp3_cnn': ('CNN_ResNet-18', 'winner, no figure given'),
    'tp3_activations': ('ReLU6', 'winner, no figure given'),
    'tp3_optimizers': ('SGD', 'winner (lr 0.01, momentum 0.9), no figure given'),
    'tp3_schedules': ('ExponentialLR', 'winner, no figure given'),
    'tp3_hyperparameters': (
        '',
        'chose lr 0.001, momentum 0.7, 25 epochs, batch 64, wd 1e-4; its table of runs '
        'tops at 85.13 % val (lr 0.05, batch 64, momentum 0.6, 25 epochs)',
    ),
    'tp3_regularizers': ('', 'no winner stated'),
    'tp3_final': ('final', '83 % (set not stated; read as test accuracy)'),
}
TP3_FINAL_ACCURACY = 83.0  # the report's one figure, plotted beside ours


# The chain's order by device. On a GPU: the UPV rows and the ResNet studies (what only a GPU can measure), the
# small CNNs, then the dense nets (35 short runs, already measured on a CPU). On a CPU: what a CPU can finish,
# the dense nets and the small CNNs, first; the ResNet studies after (days each on a CPU).
GPU_ORDER = (
    'upv_final',
    'upv_progression',
    'tp3_final',
    'tp3_activations',
    'tp3_optimizers',
    'tp3_schedules',
    'tp3_regularizers',
    'tp3_hyperparameters',
    'tp3_cnn',
    'tp3_dense',
)
CPU_ORDER = ('tp3_dense', 'tp3_cnn', *(name for name in GPU_ORDER if name not in ('tp3_dense', 'tp3_cnn')))


def order_for(platform: str, measured: Collection[str] = ()) -> list[Study]:
  """The studies in the order the chain runs them on `platform` ('cpu', else an accelerator), those already
  measured in full elsewhere (`measured`: the published records) last."""
  by_name = {s.name: s for s in STUDIES}
  order = [by_name[name] for name in (CPU_ORDER if platform == 'cpu' else GPU_ORDER)]
  return [s for s in order if s.name not in measured] + [s for s in order if s.name in measured]


def find(name: str) -> list[Study]:
  """The studies `--only name` selects: a report (upv, tp3) or one study by name."""
  chosen = [s for s in STUDIES if name in (s.report, s.name)]
  if not chosen:
    raise UserError(
        f'--only={name!r} is neither a report ({", ".join(REPORTS)}) nor a study '
        f'({", ".join(s.name for s in STUDIES)})'
    )
  return chosen
