"""Training data for the vision track and the training engine.

``base`` defines the interface the engine draws from (:class:`~sgdconv.data.base.DataSource`),
the registry :func:`~sgdconv.data.base.build_data`; ``errors`` the
:class:`~sgdconv.data.errors.DataError` every loader raises (also importable from ``base``);
``tensors`` holds in-memory data (scikit-learn's digits for the offline tiers, or any ``.npz``);
``folders`` the torchvision loaders of ImageNet (``ImageFolder``) and CIFAR-10; ``wikitext`` the
WikiText-103 loader, whose file names are in ``wikitext_files``. ``errors`` and
``wikitext_files`` import no torch: the workflow reads them when Snakemake parses it. Submodules
are imported on use, so the offline tiers never import torchvision.
"""
