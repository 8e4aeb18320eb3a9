"""kubetrove.reconcile (see ARCHITECTURE.md, 'Parts and where they live')."""
