"""Chatterjee (2022), *Convergence of gradient descent for deep neural networks*: the (xy − 1)²
example of Section 3 (``xy``, ``xy_flow``, ``xy_tables``), the deep-network experiments of
Section 4 (``nets``, ``descent``, the Section-7 lower bound ``bound``) and the claims of every
Chatterjee artifact (``claims``). Submodules are imported on use."""
