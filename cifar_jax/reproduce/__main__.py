r"""Reproduces both reports with one resumable command, in time-boxed slices; generates docs/results.md.

    python -m cifar_jax.reproduce --max-minutes=9                  # one slice; run it again to continue
    python -m cifar_jax.reproduce --only=upv --data_dir=/data/cifar10
    python -m cifar_jax.reproduce --status                         # what is done, what remains, time left
    python -m cifar_jax.reproduce --write-docs [--from tp3_dense=runs/tp3_dense_5seeds]
    python -m cifar_jax.reproduce --quick                          # the whole chain in minutes on a CPU
    python -m cifar_jax.reproduce --max-minutes=9 --set=steps_per_call=50 --vectorize   # on a GPU

Every study of `plan.STUDIES` runs as a sweep (`cifar_jax.sweep`) in `<workdir>/<study>`, each variant once
per seed where the study has seeds, on the device pipeline, in the order that adds most on this machine
(`plan.order_for`: on a GPU the UPV rows and the ResNet studies first; on a CPU the dense nets and small CNNs;
a study the published records hold in full last). `--status` prints the time left per device that has timed
runs (an estimate holds for the device kind that timed it). A finished
run is skipped, an interrupted one resumes from its checkpoint. After each study every finished run gets its
confusion matrix (`cifar_jax.analysis`). With `--max-minutes M`, a deadline `margin` seconds before M minutes
asks for the stop a first SIGTERM asks for (`preemption.request_stop`, no signal): the run in progress
checkpoints at its next step and the
chain stops, prints a summary and exits 0; the same command continues (and first analyses the runs the last
slice finished). The margin covers the checkpoint and
whatever cannot be interrupted: a run that starts compiling just before the deadline stops once compiled.
Each study's folder gets reproduce.json: the devices and commands of the invocations that ran it (commands
without the flags that name folders of this machine). `--write-docs` regenerates the page from the committed
record of each study (`docs/results/<study>/rows.json`), into which it first merges the runs of the workdir
that are at least as complete as the recorded ones, and prints what changed (cifar_jax/reproduce/records.py);
`--quick` runs never reach docs/results.md.
`--set=KEY=VALUE` applies a run-config setting to every run (after the chain's own), for settings that change
the speed and not the numbers beyond float rounding (`steps_per_call`, `log_every_steps`); `--vectorize` lets
each study's sweep group its seeds where that is measured to pay off (`vectorize='auto'`, cifar_jax/training/group.py).

`--quick` shrinks everything (256 training and 128 evaluation images, one epoch, batch 32, the big models at
tiny widths, the first two variants of each study, at most two seeds) into `runs/reproduce_quick`: it proves
the chain, its numbers mean nothing. Exit status: 0 when done or when the time box was reached, 1 on bad input
or a failed run, 130 (143) when stopped by Ctrl-C (SIGTERM): cifar_jax/cli.py.
"""

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence

from cifar_jax import cli, config_lib
from cifar_jax.data import cifar10
from cifar_jax.reproduce import plan


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='python -m cifar_jax.reproduce', description=__doc__.splitlines()[0])
  parser.add_argument(
      '--workdir',
      default=None,
      help='one folder per study (default runs/reproduce, ' 'runs/reproduce_quick with --quick)',
  )
  parser.add_argument(
      '--data_dir',
      '--data-dir',
      default=None,
      help="CIFAR-10's folder for every run " "(default: the configs', i.e. $CIFAR10_DIR)",
  )
  parser.add_argument('--only', action='append', default=[], help='upv, tp3 or a study name (repeatable)')
  parser.add_argument(
      '--max-minutes',
      '--max_minutes',
      type=float,
      default=None,
      help='stop cleanly (checkpointed) before this many minutes; run again to continue',
  )
  parser.add_argument(
      '--margin-seconds',
      '--margin_seconds',
      type=float,
      default=plan.DEFAULT_MARGIN_SECONDS,
      help='how long before --max-minutes the stop is requested (at most a quarter of the box)',
  )
  parser.add_argument('--quick', action='store_true', help='tiny data, epochs and models: proves the chain')
  parser.add_argument(
      '--pipeline',
      default='device',
      help='input pipeline of every run: device (the default: no TensorFlow, fastest) or tfdata',
  )
  parser.add_argument(
      '--set',
      dest='settings',
      action='append',
      default=[],
      metavar='KEY=VALUE',
      help='a run-config setting for every run of the chain, e.g. steps_per_call=50 on a GPU (repeatable)',
  )
  parser.add_argument(
      '--vectorize',
      action='store_true',
      help="train a study's runs that differ only in seed or numeric hyperparameters as one group",
  )
  parser.add_argument('--status', action='store_true', help='print progress and the estimate; train nothing')
  parser.add_argument(
      '--write-docs',
      '--write_docs',
      action='store_true',
      help='regenerate the tables and plots of --docs from the runs; train nothing',
  )
  parser.add_argument('--docs', default='docs/results.md', help='the page --write-docs rewrites')
  parser.add_argument(
      '--from',
      dest='sources',
      action='append',
      default=[],
      metavar='STUDY=FOLDER',
      help='--write-docs: read STUDY from this sweep folder instead of the workdir (repeatable)',
  )
  return parser.parse_args(argv)


def reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
  """Runs what the flags ask for; returns the exit status (1 when a study has failed runs)."""
  chosen = list(dict.fromkeys(s for name in args.only for s in plan.find(name)))
  config_lib.check_settings(args.settings)  # before the chain (and JAX) is imported
  if args.data_dir:
    cifar10.check_named_folder(args.data_dir)
  workdir = pathlib.Path(args.workdir or ('runs/reproduce_quick' if args.quick else 'runs/reproduce'))
  options = plan.Options(
      workdir,
      args.data_dir,
      args.quick,
      args.pipeline,
      args.max_minutes,
      args.margin_seconds,
      cli.published_command('cifar_jax.reproduce', argv),
      tuple(args.settings),
      args.vectorize,
  )
  # every run of every study in full, with the chain's settings and --set (the chain checks its --quick ones again)
  plan.check_sweeps([(s.name, s.sweep_config()) for s in chosen or plan.STUDIES], options.settings())
  from cifar_jax.reproduce import chain  # pylint: disable=import-outside-toplevel  # after the flags are checked

  if args.write_docs:
    chain.write_docs(pathlib.Path(args.docs), options, chain.parse_sources(args.sources))
    return 0
  if args.status:
    chain.print_progress(chosen or chain.chain_order(), options, per_device=True)
    return 0
  studies = chosen or chain.chain_order()
  started = time.perf_counter()
  box = chain.run_chain(studies, options)
  progress = chain.print_progress(studies, options)
  minutes = (time.perf_counter() - started) / 60
  if box.expired:
    print(
        f'Time box reached after {minutes:.1f} min: the run in progress is checkpointed. Run the same command '
        f'again to continue.'
    )
    return 0
  if box.requested:
    print(f'Stopped by a signal after {minutes:.1f} min (checkpointed): run the same command again to continue.')
    return 130
  failed = sum(p.done < p.total for p in progress)
  print(
      f'Finished in {minutes:.1f} min.'
      + (f' {failed} of the studies have failed runs (see their results.md).' if failed else '')
  )
  return 1 if failed else 0


def main(argv: Sequence[str]) -> None:
  """Runs the command line and exits with its status (cifar_jax/cli.py: one error line, 130/143 on signals)."""
  args = parse_args(argv)
  cli.run(lambda: reproduce(args, argv))


if __name__ == '__main__':
  main(sys.argv[1:])
