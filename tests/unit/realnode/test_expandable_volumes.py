"""The real node's expandable StorageClass: its manifest beside the original one, the resizer's decision
and the claim status it writes (hack/realnode/resize.py), the PV the image provisioner makes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

from realnode import configs, imagevolumes, provisioner, resize
from realnode.layout import (
    EXPANDABLE_PROVISIONER,
    EXPANDABLE_STORAGE_CLASS,
    PROVISIONER,
    STORAGE_CLASS,
)

MI = 2**20


def test_the_original_class_is_unchanged_and_the_new_one_differs_only_in_expansion() -> None:
    original = yaml.safe_load(configs.storage_class(STORAGE_CLASS, PROVISIONER))
    assert original == yaml.safe_load(
        configs.STORAGE_CLASS_MANIFEST.format(name=STORAGE_CLASS, provisioner=PROVISIONER)
    )
    assert "allowVolumeExpansion" not in original
    expandable = yaml.safe_load(
        configs.storage_class(EXPANDABLE_STORAGE_CLASS, EXPANDABLE_PROVISIONER, expandable=True)
    )
    assert expandable["allowVolumeExpansion"] is True
    assert expandable["metadata"]["name"] == "kubetrove-expandable"
    assert expandable["provisioner"] == EXPANDABLE_PROVISIONER != PROVISIONER
    for key in ("reclaimPolicy", "volumeBindingMode", "allowedTopologies"):
        assert expandable[key] == original[key]


def test_a_claim_asking_for_more_grows_its_volume() -> None:
    assert resize.step(requested=128 * MI, volume=64 * MI, claim_capacity=64 * MI) is resize.Step.GROW


def test_a_volume_grown_before_the_claim_status_said_so_is_finished() -> None:
    assert resize.step(requested=128 * MI, volume=128 * MI, claim_capacity=64 * MI) is resize.Step.FINISH


def test_nothing_to_do_when_sizes_agree_and_never_a_shrink() -> None:
    assert resize.step(requested=64 * MI, volume=64 * MI, claim_capacity=64 * MI) is resize.Step.NOTHING
    assert resize.step(requested=32 * MI, volume=64 * MI, claim_capacity=64 * MI) is resize.Step.NOTHING
    assert resize.step(requested=64 * MI, volume=64 * MI, claim_capacity=None) is resize.Step.NOTHING


def test_status_while_resizing_keeps_other_conditions_and_allocates_the_new_size() -> None:
    other = {"type": "ModifyingVolume", "status": "True"}
    stale = {"type": "FileSystemResizePending", "status": "True"}
    patch = resize.resizing_patch([other, stale], "128Mi", "2026-12-06T00:00:00Z")["status"]
    assert patch["conditions"] == [
        other,
        {"type": "Resizing", "status": "True", "lastTransitionTime": "2026-12-06T00:00:00Z"},
    ]
    assert patch["allocatedResources"] == {"storage": "128Mi"}
    assert patch["allocatedResourceStatuses"] == {"storage": "ControllerResizeInProgress"}


def test_status_when_finished_sets_capacity_and_clears_the_resize_state() -> None:
    resizing = {"type": "Resizing", "status": "True"}
    patch = resize.finished_patch([resizing], "128Mi")["status"]
    assert patch["capacity"] == {"storage": "128Mi"}
    assert patch["conditions"] is None  # merge patch: the list goes
    assert patch["allocatedResourceStatuses"] == {"storage": None}  # merge patch: the key goes


def test_the_image_provisioner_pins_its_pv_to_the_node_in_its_own_class() -> None:
    args = argparse.Namespace(
        node="n0", storage_class=EXPANDABLE_STORAGE_CLASS, provisioner=EXPANDABLE_PROVISIONER
    )
    meta = SimpleNamespace(uid="u1", namespace="ns", name="data")
    spec = SimpleNamespace(resources=SimpleNamespace(requests={"storage": "64Mi"}),
                           access_modes=["ReadWriteOnce"], volume_mode=None)  # fmt: skip
    pv = provisioner.pv_manifest(SimpleNamespace(metadata=meta, spec=spec), args, Path("/v/pvc-u1"))
    assert pv["metadata"]["annotations"] == {provisioner.PROVISIONED_BY: EXPANDABLE_PROVISIONER}
    assert pv["spec"]["storageClassName"] == EXPANDABLE_STORAGE_CLASS
    assert pv["spec"]["capacity"] == {"storage": "64Mi"}
    assert pv["spec"]["local"] == {"path": "/v/pvc-u1"}


def test_a_volume_image_sits_beside_its_mount_point() -> None:
    assert imagevolumes.image_of(Path("/v/pvc-u1")) == Path("/v/pvc-u1.img")


def test_the_provisioner_never_acts_outside_its_directory() -> None:
    args = argparse.Namespace(volumes="/v")
    inside = SimpleNamespace(spec=SimpleNamespace(local=SimpleNamespace(path="/v/pvc-1")))
    outside = SimpleNamespace(spec=SimpleNamespace(local=SimpleNamespace(path="/etc/pvc-1")))
    nested = SimpleNamespace(spec=SimpleNamespace(local=SimpleNamespace(path="/v/x/pvc-1")))
    assert provisioner.local_path(inside, args) == Path("/v/pvc-1")
    assert provisioner.local_path(outside, args) is None
    assert provisioner.local_path(nested, args) is None
