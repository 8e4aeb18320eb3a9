"""kubetrove.handlers (see ARCHITECTURE.md, 'Parts and where they live')."""
