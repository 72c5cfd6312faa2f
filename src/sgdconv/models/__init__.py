"""Model definitions: Chatterjee's feedforward networks (``feedforward``) and the ResNets of
the vision track. Submodules are imported on use, so importing one does not load the others."""
