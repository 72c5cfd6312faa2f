"""Shared mathematics of the local Łojasiewicz condition (Chatterjee 2022, (2.1); An & Lu 2025,
(2.2)–(2.3)): the certificate α̂(θ0, r) by numerical search (``certificate``) and the smoothness
constant on a ball (``smoothness``)."""
