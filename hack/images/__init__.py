"""Local test images for the real node, built without Docker: Debian packages (mmdebstrap) and our own
files, written as OCI archives for `ctr -n k8s.io images import`. See build.py (cache), recipes.py
(what each image holds), layers.py (how layers are made) and oci.py (the archive format).
"""

from .build import Built, cache_dir, ensure, ensure_recipe, locked, remove_cache
from .table import RECIPES

__all__ = ["RECIPES", "Built", "cache_dir", "ensure", "ensure_recipe", "locked", "remove_cache"]
