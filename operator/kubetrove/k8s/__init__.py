"""kubetrove.k8s: the ONLY code that calls the Kubernetes API.

``port.Kube`` is the interface (server-side apply, get/list/create/replace/patch/delete);
``client.KubeClient`` implements it on the official client; ``events``, ``lease`` and ``ops`` are
written once on top of it, so the in-memory fake used by unit tests exercises them too.
"""
