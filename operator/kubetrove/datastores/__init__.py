"""kubetrove.datastores (see ARCHITECTURE.md, 'Parts and where they live')."""
