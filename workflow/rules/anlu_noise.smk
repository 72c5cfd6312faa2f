"""anlu_noise: plain minibatch SGD runs with the statistics pipeline (to be written)."""
