"""The generic training engine (minibatch SGD with momentum and weight decay), used by the
vision track and by every other track that trains a network on checkpoints.

* :mod:`~sgdconv.train.spec`: :class:`RunSpec`, a run as plain data (model, data and loss by name);
* :mod:`~sgdconv.train.engine`: :func:`train_run`, resumable, divergence-aware, DDP-ready;
* :mod:`~sgdconv.train.launch`: :func:`launch`, in-process or with ``torchrun``;
* :mod:`~sgdconv.train.schedules`, :mod:`~sgdconv.train.losses`, :mod:`~sgdconv.train.checkpoint`.

The statistics of a saved checkpoint are in :mod:`sgdconv.stats` (``checkpoint_context``, ...).
"""
