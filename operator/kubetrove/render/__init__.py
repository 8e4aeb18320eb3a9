"""kubetrove.render (see ARCHITECTURE.md, 'Parts and where they live')."""
