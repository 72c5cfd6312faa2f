"""An & Lu (2025), *SGD under a local Łojasiewicz condition*: the Monte-Carlo experiments of
Theorem 3.1 (``thm31``), Theorem 4.1 and Lemma 4.2 (``bounded``), their constants
(``constants``) and starting points (``setup``), the minibatch-SGD noise runs of Assumption 4
(``noise``) and the claims of every An & Lu artifact (``claims``). Submodules are imported on
use."""
