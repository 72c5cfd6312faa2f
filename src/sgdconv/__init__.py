"""sgdconv: replication of three papers on the convergence of (stochastic) gradient descent.

Subpackages hold the science, each with unit tests:

- ``toy``: the exact two-dimensional examples (Zhang et al. Fig. 4; Chatterjee Section 3).
- ``stats``: loss, gradient norm, noise and sharpness estimators (Zhang et al. eq. (1)).
- ``models``, ``theory``: Chatterjee's networks, the local Łojasiewicz certificate, and
  An & Lu's Monte-Carlo SGD experiments.
- ``data``, ``train``, ``vision``: the image-classification track of Zhang et al.
- ``claims``, ``plotting``, ``provenance``: the workflow's shared plumbing.
"""

__version__ = "0.1.0"
