"""Theory track: the local Łojasiewicz certificate of Chatterjee (2022) and the batched
(Monte-Carlo) gradient-descent and SGD experiments of Chatterjee Section 4 and An & Lu (2025)."""
