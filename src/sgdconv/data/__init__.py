"""Training data for the vision track and the training engine.

``base`` defines the interface the engine draws from (:class:`~sgdconv.data.base.DataSource`),
the registry :func:`~sgdconv.data.base.build_data` and :class:`~sgdconv.data.base.DataError`;
``tensors`` holds in-memory data (scikit-learn's digits for the offline tiers, or any ``.npz``);
``folders`` the torchvision loaders of ImageNet (``ImageFolder``) and CIFAR-10. Submodules are
imported on use, so the offline tiers never import torchvision.
"""
