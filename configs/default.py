"""Every key of a cifar_jax run, with its default; other configs import this and override a few.

    python -m cifar_jax.main --config=configs/default.py --workdir=runs/default

Defaults: CIFAR ResNet-18, SGD with momentum and cosine decay (stepped every batch), crop + flip. Expected
accuracy: not yet measured (see configs/resnet18.py for the full recipe).
"""

import ml_collections

from cifar_jax.data import augment_config


def get_config() -> ml_collections.ConfigDict:
  """The default config: every key a run reads, each with a one-line comment."""
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = 'resnet18'  # a name from `python -m cifar_jax.models`
  config.model.activation = 'relu'  # relu, leaky_relu, relu6, elu, tanh, silu, sigmoid, softmax, gelu
  config.model.dropout = 0.0  # dropout rate before the dense layers, in [0, 1)

  config.num_epochs = 30  # length of the run in epochs (the schedule spans them)
  config.num_train_steps = -1  # -1: num_epochs of steps; otherwise stop after this many steps (schedule unchanged)
  config.batch_size = 128  # global batch size, split over all devices (must be divisible by their count)
  config.eval_batch_size = 500  # global batch size for validation and test evaluation
  config.seed = 0  # the run's randomness: init, dropout, data order, augmentation (not the validation split)
  config.dtype = 'float32'  # compute dtype: float32 or bfloat16 (parameters stay float32)
  config.parallelism = 'jit'  # data parallelism: jit (sharded mesh, the default) or pmap (explicit pmean)
  # train steps per dispatch, fused under lax.scan (> 1 needs data.pipeline=device, jit; slower for conv nets on CPU)
  config.steps_per_call = 1
  # a PyTorch state_dict to start from instead of seed's init: .pth/.pt (needs torch) or .npz (numpy); its whole
  # training checkpoint does too. num_epochs=0 only evaluates it. Set data.normalization to the recipe it was trained with
  config.init_from = ''

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'sgd'  # sgd, adam, adamw, adagrad, rmsprop, adadelta, muon
  config.optimizer.learning_rate = 0.1  # peak (or constant) learning rate, > 0
  config.optimizer.momentum = 0.9  # sgd and rmsprop momentum; 0 disables it
  config.optimizer.nesterov = False  # sgd only: Nesterov momentum
  config.optimizer.weight_decay = 5e-4  # L2 added to the gradient as PyTorch does; decoupled for adamw
  config.optimizer.grad_clip_norm = 0.0  # clip gradients to this global norm; 0 disables clipping
  # muon (conv filters: orthogonalised Nesterov momentum; every other parameter: torch SGD at learning_rate)
  config.optimizer.muon_learning_rate = 0.24  # muon: rate of the filters' orthogonalised step
  config.optimizer.muon_momentum = 0.6  # muon: the filters' Nesterov momentum (torch's buffer convention)
  config.optimizer.muon_ns_steps = 3  # muon: Newton-Schulz iterations per step
  config.optimizer.muon_dtype = 'bfloat16'  # muon: dtype of the Newton-Schulz iterations (float32, bfloat16)
  config.optimizer.head_learning_rate = 0.0  # muon: rate of the parameters under 'head' (0: learning_rate)
  config.optimizer.whiten_bias_epochs = 0.0  # muon: epochs the 'whiten' bias trains, its rate decaying to 0 (0: all)

  config.schedule = ml_collections.ConfigDict()
  config.schedule.name = 'cosine'  # constant, step, multistep, exponential, cosine, cosine_epoch, warmup_cosine,
  # onecycle, plateau, linear: PyTorch's schedulers; cosine steps every batch, cosine_epoch once per epoch (optim.py)
  config.schedule.warmup_epochs = 0.0  # warmup_cosine: epochs of linear warmup from 0
  config.schedule.step_epochs = 30  # step: multiply by gamma every this many epochs (PyTorch StepLR)
  config.schedule.milestones = (50, 75)  # multistep: epochs at which to multiply by gamma (MultiStepLR)
  config.schedule.gamma = 0.1  # step, multistep: factor per decay; exponential: factor per epoch
  config.schedule.plateau_factor = 0.1  # plateau: factor on validation-loss plateau (ReduceLROnPlateau)
  config.schedule.plateau_patience = 10  # plateau: epochs without improvement before reducing
  config.schedule.plateau_min_lr = 1e-6  # plateau: the learning rate never goes below this
  config.schedule.plateau_threshold = 1e-4  # plateau: an improvement must beat the best loss by this fraction
  config.schedule.plateau_cooldown = 0  # plateau: epochs after a reduction before bad epochs count again

  config.regularization = ml_collections.ConfigDict()
  config.regularization.l1 = 0.0  # Lasso: coefficient of sum |w| added to the loss
  config.regularization.l2 = 0.0  # Ridge: coefficient of sum w^2 added to the loss
  config.regularization.label_smoothing = 0.0  # cross-entropy label smoothing, in [0, 1)

  config.data = ml_collections.ConfigDict()
  config.data.source = 'auto'  # files (official cifar-10-batches-py), tfds, or auto (files if found)
  # data_dir: the batches folder or its parent ('': $CIFAR10_DIR; one that does not exist is an error); for tfds its
  # data_dir. auto falls back to a copy tfds has already prepared; only source=tfds downloads (if online within 3 s)
  config.data.data_dir = ''
  config.data.val_fraction = 0.0  # share of the 50,000 training images held out for validation, in [0, 1)
  config.data.split_seed = 0  # draws the validation images, apart from `seed`; changing it changes them
  config.data.pipeline = 'tfdata'  # tfdata (host tf.data) or device (dataset on the accelerators; no TF)
  config.data.normalize = True  # per-channel standardization: (image - mean) / std with data.normalization's
  # cifar_jax (the training set's), kuangliu (pytorch-cifar's std 0.2023...), tutorial (0.5), imagenet, or custom:
  # data.mean and data.std. A PyTorch model (init_from) needs the statistics it was trained with.
  config.data.normalization = 'cifar_jax'
  config.data.mean = ()  # custom only: per-channel mean (red, green, blue) in [0, 1] units
  config.data.std = ()  # custom only: per-channel std, each > 0
  config.data.max_train_examples = -1  # -1: all; a small number for quick runs
  config.data.max_eval_examples = -1  # -1: all validation and test images; a small number for quick runs

  config.eval = ml_collections.ConfigDict()
  config.eval.tta = 0  # test-time augmentation of every evaluation: 0 none, 1 mirror, 2 mirror + 1-pixel shifts

  config.augment = ml_collections.ConfigDict()
  config.augment.ops = ('random_crop', 'horizontal_flip')  # applied in this order, on the training set only
  # Every key the ops read (crop_padding, erasing_*, affine_*, jitter, resized_crop_*), with its default. What
  # each means and allows: the OPS table in cifar_jax/data/augment_config.py, or the list that
  # `python -m cifar_jax.data.augment_config` prints.
  config.augment.update(augment_config.default_values())

  config.log_every_steps = 50  # training metrics and the progress line every this many steps
  config.checkpoint_keep = 3  # how many of the latest checkpoints to keep (the best is kept apart)
  # When the latest checkpoint is written at an epoch's end: every this many epochs, or once this many seconds have
  # passed since the last one (0 turns either off). It is always written at the last step and on a stop (SIGTERM,
  # Ctrl-C, the reproduce time box); the best one whenever validation improves. A resume repeats the steps since.
  config.checkpoint_every_epochs = 1
  config.checkpoint_every_seconds = 0.0
  return config
