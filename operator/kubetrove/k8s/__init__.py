"""kubetrove.k8s (see ARCHITECTURE.md, 'Parts and where they live')."""
