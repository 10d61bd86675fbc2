"""VM manager behaviour that needs no guest image: errors, handles."""
import uuid

import pytest

import aetherium


@pytest.fixture
def bare_vmm(tmp_path_factory):
    import tempfile, shutil
    d = tempfile.mkdtemp(prefix="aeth-pyl-", dir="/tmp")
    m = aetherium.VMM(state_dir=d, image_dir=d + "/no-image")
    yield m
    m.close()
    shutil.rmtree(d, ignore_errors=True)


def test_unknown_vm_is_not_found_with_the_c_message(bare_vmm):
    vm_id = str(uuid.uuid4())
    with pytest.raises(aetherium.NotFound) as ei:
        bare_vmm.get(vm_id)
    e = ei.value
    assert e.code == aetherium.NotFound.code
    assert vm_id in str(e)       # the C message names the id
    assert e.reason == "not found"


def test_missing_image_is_not_found_and_leaves_nothing(bare_vmm):
    with pytest.raises(aetherium.NotFound) as ei:
        aetherium.VM(vmm=bare_vmm, name="no-image")
    assert "build-image.sh" in str(ei.value)
    assert bare_vmm.list() == []  # the half-made VM was deleted


def test_vm_defined_but_not_started(bare_vmm):
    vm = aetherium.VM(vmm=bare_vmm, name="defined", vcpus=2, memory_mb=300,
                      start=False)
    assert vm.status == "creating"
    assert (vm.name, vm.vcpus, vm.memory_mb) == ("defined", 2, 300)
    assert bare_vmm.list() == [vm.id]
    vm_id = vm.id
    with bare_vmm.get(vm_id) as again:       # attached handle: close keeps it
        assert again.id == vm_id
    assert bare_vmm.list() == [vm_id]
    vm.close()                               # owned: close deletes
    assert bare_vmm.list() == []
    assert vm.closed
    with pytest.raises(aetherium.InvalidState):
        vm.id
    vm.close()                               # idempotent


def test_keep_and_detach(bare_vmm):
    vm = aetherium.VM(vmm=bare_vmm, start=False, keep=True)
    vm_id = vm.id
    del vm                                   # finalizer frees, keeps the VM
    import gc
    gc.collect()
    assert bare_vmm.list() == [vm_id]
    vm = bare_vmm.get(vm_id, owned=True)
    vm.close()
    assert bare_vmm.list() == []


def test_closing_the_manager_closes_its_vms(bare_vmm):
    vm = aetherium.VM(vmm=bare_vmm, start=False)
    bare_vmm.close()
    assert vm.closed and bare_vmm.closed
    with pytest.raises(aetherium.InvalidState):
        bare_vmm.list()


def test_bad_arguments():
    with pytest.raises(ValueError):
        aetherium.VMM(accel="warp")
    with pytest.raises(aetherium.InvalidArgument):
        aetherium.VMM(backend="nonesuch")


def test_vm_options_defaults_come_from_the_library():
    from aetherium._ffi import new_options, constant
    opts, _ = new_options("aeth_vm_options")
    assert opts.version == constant("AETH_VM_OPTIONS_VERSION")
    # the library's _init, not a parse of the header's macro
    wopts, _ = new_options("aeth_worker_options")
    assert wopts.migrate == 1


def test_options_init_refuses_unknown_versions():
    from aetherium._ffi import ffi, lib, constant
    opts = ffi.new("aeth_vm_options *")
    current = constant("AETH_VM_OPTIONS_VERSION")
    assert lib.aeth_vm_options_init(opts, current + 1) == aetherium.InvalidArgument.code
    msg = ffi.string(lib.aeth_error_last()).decode()
    assert "1..%d" % current in msg and "aeth_vm_options" in msg


def test_owned_vm_is_deleted_when_garbage_collected(bare_vmm):
    import gc
    aetherium.VM(vmm=bare_vmm, start=False)   # dropped at once
    gc.collect()
    assert bare_vmm.list() == []


def test_lifetime_and_rules_are_checked_without_booting(bare_vmm):
    import time
    t0 = time.time() * 1000
    with aetherium.VM(vmm=bare_vmm, start=False, ttl=60) as vm:
        assert t0 + 59000 <= vm.expires_ms <= time.time() * 1000 + 60000
    with aetherium.VM(vmm=bare_vmm, start=False) as vm:
        assert vm.expires_ms == 0
    for bad in (["host:0"], ["example.com:443"], ["0.0.0.0/0:22"]):
        with pytest.raises(aetherium.InvalidArgument):
            aetherium.VM(vmm=bare_vmm, start=False, network="user", allow=bad)
    with pytest.raises(TypeError):
        aetherium.VM(vmm=bare_vmm, start=False, network="user", allow="host:80")
