"""The generic training engine (minibatch SGD with momentum and weight decay), used by the
vision track and by every other track that trains a network on checkpoints.

* :mod:`~sgdconv.train.spec`: :class:`RunSpec`, a run as plain data (model, data and loss by name);
* :mod:`~sgdconv.train.engine`: :func:`train_run`, resumable, divergence-aware, DDP-ready;
* :mod:`~sgdconv.train.launch`: :func:`launch`, in-process or with ``torchrun``;
* :mod:`~sgdconv.train.resume`: which checkpoints verify, where a run restarts;
  :mod:`~sgdconv.train.repair`: ``python -m sgdconv.train.repair <run_dir>`` rewrites a finished
  run's missing or corrupt checkpoints;
* :mod:`~sgdconv.train.schedules`, :mod:`~sgdconv.train.losses`, :mod:`~sgdconv.train.checkpoint`.

The statistics of a saved checkpoint are in :mod:`sgdconv.stats` (``checkpoint_context``, ...).
"""
