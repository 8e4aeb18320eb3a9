"""The reconcile phases, one module each; ``kubetrove.reconcile.run.PHASES`` orders them."""
