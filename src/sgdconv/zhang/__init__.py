"""Zhang, Li, Sra & Jadbabaie (ICML 2022), *Neural network weights do not converge to
stationary points*: the GD example of Section 3.4 (``sine``), the training runs of the vision
track (``experiments``), their derived quantities (``analysis``, ``tables``) and the claims of
every Zhang artifact (``claims``, and ``sine.claims`` for Fig. 4). Submodules are imported on
use."""
