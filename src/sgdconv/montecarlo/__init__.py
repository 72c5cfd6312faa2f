"""Shared Monte-Carlo mathematics: many independent SGD trajectories as one batch
(``trajectories``), one counter-based random stream per trajectory (``philox``), least-squares
rates (``fits``), binomial confidence intervals (``binomial``) and quantile summaries
(``summaries``)."""
