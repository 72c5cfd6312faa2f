"""The vision track of Zhang et al. (2022): ResNet runs (``experiments``), derived quantities
(``analysis``, ``tables``) and the claims of zhang_fig1, fig2, fig5, fig6, fig7, thm43 and eq10
(``claims``). Submodules are imported on use."""
