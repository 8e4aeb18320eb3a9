"""kubetrove.clustering (see ARCHITECTURE.md, 'Parts and where they live')."""
