"""The reproduce chain: the generated blocks of the page, the estimate, the time box and resume, the quick chain."""

import pathlib
import time
import types

import ml_collections
import pytest

from cifar_jax.reproduce import __main__ as reproduce_command
from cifar_jax.reproduce import chain, plan, results_page
from cifar_jax.training import preemption, run_dir, trainer
from cifar_jax.reproduce.plan import Study
from cifar_jax.errors import UserError

PAGE = """# Title

Hand-written text above.
<!-- generated:upv begin -->
old upv table
<!-- generated:upv end -->
Text between, kept.
<!-- generated:tp3 begin -->
old tp3
<!-- generated:tp3 end -->
Text below, kept.
"""


def _exit_status(argv):
  """What `python -m cifar_jax.reproduce ARGV` exits with (the command exits through cifar_jax/cli.py)."""
  with pytest.raises(SystemExit) as stopped:
    reproduce_command.main(argv)
  return stopped.value.code


def test_replace_generated_rewrites_only_between_markers():
  text = results_page.replace_generated(PAGE, 'upv', 'NEW')
  assert 'old upv table' not in text and '<!-- generated:upv begin -->\nNEW\n<!-- generated:upv end -->' in text
  assert text.replace('NEW\n', 'old upv table\n') == PAGE  # everything else byte for byte


@pytest.mark.parametrize(
    'page', [PAGE.replace('<!-- generated:upv end -->', ''), PAGE + '<!-- generated:upv begin -->']
)
def test_replace_generated_refuses_broken_markers(page):
  with pytest.raises(Exception, match='exactly one'):
    results_page.replace_generated(page, 'upv', 'NEW')


def _config(model='mlp', **values):
  config = ml_collections.ConfigDict(
      {
          'model': {'name': model},
          'num_epochs': 2,
          'num_train_steps': -1,
          'batch_size': 32,
          'data': {'val_fraction': 0.2, 'max_train_examples': 320},
          'seed': 0,
      }
  )
  config.update(values)
  return config


def _finished(folder, config, wall_seconds, steps):
  folder.mkdir(parents=True)
  run_dir.write_config(folder, config)
  run_dir.write_json(
      folder / run_dir.SUMMARY_FILE,
      {'status': 'completed', 'wall_seconds': wall_seconds, 'steps': steps, 'val_accuracy': 0.5},
  )


def test_estimate_times_remaining_runs_by_finished_runs_of_their_kind(tmp_path):
  # 320 images / batch 32 = 10 steps an epoch, 2 epochs = 20 steps; a finished seed took 64 s: 0.1 s per image.
  mlp, other = _config(), _config(model='lenet5')
  _finished(tmp_path / 'a' / 'seed=0', mlp, wall_seconds=64.0, steps=20)
  (tmp_path / 'a' / 'seed=1' / 'checkpoints' / 'latest' / '5').mkdir(parents=True)  # 15 steps left
  runs = [types.SimpleNamespace(name=f'a/seed={k}', variant='a', config=mlp) for k in range(3)]
  runs.append(types.SimpleNamespace(name='b', variant='b', config=other))
  progress = chain.study_progress(Study('s', 'tp3', 'x'), runs, tmp_path)
  assert (progress.done, progress.total, progress.unknown) == (1, 4, 1)
  assert progress.seconds_left == pytest.approx(15 * 32 * 0.1 + 20 * 32 * 0.1)  # 48 s + 64 s
  assert 'unknown until one run of their kind finishes' in progress.describe()


def test_the_estimate_per_device_uses_only_the_runs_that_device_timed(tmp_path):
  # Same variant, seeds 0 and 1 finished on two devices (0.1 and 0.01 s per image); seed 2 remains: 20 steps x 32.
  config = _config()
  for seed, device, seconds in ((0, 'CPU, 2 cores', 64.0), (1, 'NVIDIA H100 (gpu)', 6.4)):
    _finished(tmp_path / 'a' / f'seed={seed}', config, wall_seconds=seconds, steps=20)
    summary = run_dir.read_json(tmp_path / 'a' / f'seed={seed}' / run_dir.SUMMARY_FILE)
    run_dir.write_json(tmp_path / 'a' / f'seed={seed}' / run_dir.SUMMARY_FILE, {**summary, 'device': device})
  runs = [types.SimpleNamespace(name=f'a/seed={k}', variant='a', config=config) for k in range(3)]
  study = Study('s', 'tp3', 'x')
  cpu = chain.study_progress(study, runs, tmp_path, 'CPU, 2 cores')
  gpu = chain.study_progress(study, runs, tmp_path, 'NVIDIA H100 (gpu)')
  assert cpu.seconds_left == pytest.approx(20 * 32 * 0.1) and gpu.seconds_left == pytest.approx(20 * 32 * 0.01)
  assert (cpu.basis, gpu.basis) == (1, 1)


def test_expected_steps_follow_the_split_the_cap_and_the_step_limit():
  assert chain.expected_steps(_config(data={'val_fraction': 0.2, 'max_train_examples': -1})) == 2 * 1250
  assert chain.expected_steps(_config(num_train_steps=7)) == 7


def test_deadline_leaves_the_margin_at_most_a_quarter_of_the_box():
  assert chain.deadline_seconds(9, 60) == 9 * 60 - 60
  assert chain.deadline_seconds(1, 60) == 45
  assert chain.deadline_seconds(None, 60) is None


@pytest.mark.parametrize('study', plan.STUDIES, ids=lambda s: s.name)
def test_quick_runs_every_study_small_and_valid(study):
  options = plan.Options(pathlib.Path('unused'), quick=True)
  runs = chain.expand_study(study, options)
  variants = {r.variant for r in runs}
  assert 1 <= len(variants) <= chain.QUICK_VARIANTS
  for run in runs:
    trainer.check_config(run.config)
    assert (run.config.num_epochs, run.config.data.max_train_examples) == (1, 256)
    options_of_model = run.config.model.to_dict()
    assert options_of_model.get('width', 4) == 4
    assert all(n <= 4 or kind in ('max', 'avg') for kind, n in options_of_model.get('plan', []))


def test_full_plan_runs_every_variant_with_the_study_seeds():
  runs = chain.expand_study(plan.find('upv_final')[0], plan.Options(pathlib.Path('unused')))
  assert {r.variant for r in runs} == {'6_resnet_final'}
  dense = chain.study_sweep(plan.find('tp3_dense')[0])
  assert len(dense.variants) == 7 and dense.get('seeds', 5) == 5


def test_set_reaches_every_run_after_the_chains_own_settings_and_vectorize_lets_the_sweep_measure():
  args = reproduce_command.parse_args(['--quick', '--set=steps_per_call=8', '--set=batch_size=16', '--vectorize'])
  options = plan.Options(pathlib.Path('unused'), quick=True, extra_settings=tuple(args.settings))
  runs = chain.expand_study(plan.find('tp3_final')[0], options)
  assert {(r.config.steps_per_call, r.config.batch_size) for r in runs} == {(8, 16)}  # --quick alone sets 32
  assert args.vectorize and chain.study_sweep(plan.find('tp3_final')[0], vectorize=True).vectorize == 'auto'
  assert chain.study_sweep(plan.find('tp3_final')[0]).vectorize == 'off'


@pytest.mark.parametrize(
    ('setting', 'message'),
    [
        (
            'optimizer.learnig_rate=1',
            "unknown config key 'optimizer.learnig_rate'; did you mean optimizer.learning_rate ",
        ),
        ('oops', "--set='oops' must read key=value"),
    ],
)
def test_a_bad_set_stops_the_chain_with_one_line(tmp_path, capsys, setting, message):
  assert _exit_status(['--quick', '--status', f'--workdir={tmp_path}', f'--set={setting}']) == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ') and message in err and len(err.strip().splitlines()) == 1


def test_an_unknown_name_stops_the_chain_before_any_study_makes_its_folder(tmp_path, capsys):
  args = ['--quick', '--only=tp3_dense', '--only=tp3_cnn', f'--workdir={tmp_path / "chain"}']
  assert _exit_status([*args, '--set=optimizer.name=lion']) == 1
  err = capsys.readouterr().err
  assert err.startswith('error: tp3_dense: variant ') and "optimizer.name='lion' is not one of" in err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / 'chain').exists()


SWEEP = """
import ml_collections
from configs.sweeps import smoke


def get_config():
  config = smoke.get_config()
  config.grid = ml_collections.ConfigDict()
  config.variants = [{'name': 'short', 'overrides': {'num_epochs': 1}},
                     {'name': 'long', 'overrides': {'num_epochs': 100000}}]
  return config
"""


def test_time_box_reaches_a_trainer_that_starts_after_the_deadline():
  with preemption.TimeBox(0.2) as box:
    time.sleep(0.5)  # the deadline passes here, between runs
    assert box.expired and box.requested
    with preemption.StopRequest() as stop:  # a run that starts late stops at its first check
      assert stop.received == 'SIGTERM'
  with preemption.StopRequest() as after:  # the request ends with the box
    assert after.received is None


def test_time_box_asks_a_run_in_progress_once_never_for_the_hard_second_stop():
  # A step longer than a second (ResNet-18 on a CPU) must not see a second request: a second SIGTERM ends the
  # process at once without a checkpoint. The request comes without any signal.
  with preemption.TimeBox(0.2) as box, preemption.StopRequest() as stop:
    for _ in range(50):  # back in Python often, as a training loop is between steps, so signals are handled
      time.sleep(0.05)
    assert box.expired and stop.received == 'SIGTERM'


def test_time_box_without_a_deadline_never_fires():
  with preemption.TimeBox(None) as box:
    time.sleep(0.2)
  assert not box.expired and not box.requested


def test_time_box_stops_before_the_limit_and_the_next_call_continues(tmp_path, cifar10_dir):
  sweep_file = tmp_path / 'sweep.py'
  sweep_file.write_text(SWEEP)
  study = Study('timed', 'tp3', str(sweep_file))
  # One minute, the stop requested 15 s before it: room for two compilations on a busy 2-core machine.
  options = plan.Options(tmp_path / 'runs', data_dir=str(cifar10_dir), max_minutes=1, margin_seconds=15)
  started = time.perf_counter()
  box = chain.run_chain([study], options)
  assert box.expired and time.perf_counter() - started < 60
  short, long = tmp_path / 'runs' / 'timed' / 'short', tmp_path / 'runs' / 'timed' / 'long'
  assert run_dir.read_json(short / run_dir.SUMMARY_FILE)['status'] == 'completed'
  assert not (long / run_dir.SUMMARY_FILE).exists()
  first_stop = run_dir.checkpoint_step(long)
  assert first_stop > 0
  finished_at = (short / run_dir.SUMMARY_FILE).stat().st_mtime_ns

  box = chain.run_chain([study], options)  # the same command again
  assert box.expired
  assert (short / run_dir.SUMMARY_FILE).stat().st_mtime_ns == finished_at  # a finished run is never redone
  assert (short / 'confusion.png').exists() and (short / 'per_class.md').exists()  # analysed by the next slice
  assert run_dir.checkpoint_step(long) > first_stop  # resumed, not restarted
  assert any(r['kind'] == 'train' and r['step'] <= first_stop for r in run_dir.read_metrics(long))


def test_quick_chain_writes_runs_page_and_figures(tmp_path, cifar10_dir, capsys):
  page = tmp_path / 'results.md'
  page.write_text(PAGE)
  workdir = tmp_path / 'runs'
  common = ['--quick', f'--workdir={workdir}', f'--data_dir={cifar10_dir}']
  assert _exit_status([*common, '--only=tp3_dense']) == 0
  assert 'Finished in' in capsys.readouterr().out
  runs = [p.parent for p in (workdir / 'tp3_dense').rglob(run_dir.SUMMARY_FILE)]
  assert runs and all((run / 'confusion.png').exists() and (run / 'per_class.md').exists() for run in runs)
  assert 'devices' in run_dir.read_json(workdir / 'tp3_dense' / results_page.RECORD_FILE)

  assert _exit_status([*common, '--write-docs', f'--docs={page}']) == 0
  text = page.read_text()
  assert text.startswith('# Title\n\nHand-written text above.\n') and 'Text between, kept.' in text
  mlp_row = next(line for line in text.splitlines() if line.startswith('| MLP |'))
  assert ', n=' in mlp_row and results_page.NOT_MEASURED not in mlp_row
  assert '| 1 | 0:0' in mlp_row  # one epoch, its wall time
  assert results_page.NOT_MEASURED in next(line for line in text.splitlines() if line.startswith('| CNN |'))
  for study in plan.STUDIES:
    if study.report == 'tp3':
      assert (tmp_path / 'results' / 'figures' / f'{study.name}.png').exists()
  assert (tmp_path / 'results' / 'figures' / 'upv_progression.png').exists()


def test_only_names_a_report_or_a_study():
  assert [s.name for s in plan.find('upv')] == ['upv_final', 'upv_progression']
  with pytest.raises(UserError, match='neither a report'):
    plan.find('tp4')


def _first_quick_run(tmp_path, *settings):
  """The first run of the first study of the quick chain in `tmp_path`, and its folder."""
  study = plan.STUDIES[0]
  options = plan.Options(tmp_path, quick=True, extra_settings=settings)
  run = chain.expand_study(study, options)[0]
  return study, options, run, tmp_path / study.name / run.name


def test_status_counts_a_run_finished_with_another_steps_per_call_as_done(tmp_path):
  """A CPU run (one step per call) is done for a GPU chain started with --set=steps_per_call=50."""
  study, options, run, folder = _first_quick_run(tmp_path, 'steps_per_call=50')
  cpu_config = run.config.copy_and_resolve_references()
  cpu_config.steps_per_call = 1
  folder.mkdir(parents=True)
  run_dir.write_config(folder, cpu_config)
  run_dir.write_json(folder / run_dir.SUMMARY_FILE, {'status': 'completed'})
  runs = chain.expand_study(study, options)
  assert chain.study_progress(study, runs, tmp_path / study.name).done == 1
  cpu_config.batch_size *= 2  # a key that changes the numbers: not done
  run_dir.write_config(folder, cpu_config)
  assert chain.study_progress(study, runs, tmp_path / study.name).done == 0


def test_a_folder_of_another_config_is_refused_in_reproduces_own_flags(tmp_path, capsys):
  study, _, run, folder = _first_quick_run(tmp_path)
  other = run.config.copy_and_resolve_references()
  other.batch_size *= 2
  folder.mkdir(parents=True)
  run_dir.write_config(folder, other)
  assert _exit_status(['--quick', f'--workdir={tmp_path}', f'--only={study.name}']) == 1
  err = capsys.readouterr().err
  assert f'{folder} holds a run of a different config (batch_size: ' in err
  assert chain.REPRODUCE_ADVICE in err and '--allow_config_change' not in err
