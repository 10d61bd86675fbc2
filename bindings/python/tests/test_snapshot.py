"""How a VM was made, through the binding: a manager with snapshots makes
the snapshot of the shape with the first VM and restores the next from
it; each says so (origin) and how long its start took."""
import shutil
import tempfile

import aetherium

from conftest import image_dir, require_image


def test_origin_and_start_ms():
    require_image()
    d = tempfile.mkdtemp(prefix="aeth-pys-", dir="/tmp")
    m = aetherium.VMM(state_dir=d, image_dir=str(image_dir()), boot_timeout=90,
                      snapshots=True, tcg_tb_mb=16)
    try:
        with aetherium.VM(vmm=m, name="first") as a, \
                aetherium.VM(vmm=m, name="second") as b:
            assert (a.origin, b.origin) == ("snapshot", "snapshot")
            assert a.start_ms > 0 and b.start_ms > 0
            # distinct machines: their own name and random bytes
            assert a.exec(["hostname"]).stdout.strip() == a.id
            assert b.exec(["hostname"]).stdout.strip() == b.id
            rnd = "head -c 16 /dev/urandom | od -An -tx1"
            assert a.exec(rnd).stdout != b.exec(rnd).stdout
        with aetherium.VMM(state_dir=d, image_dir=str(image_dir())) as cold:
            with aetherium.VM(vmm=cold, name="cold") as c:
                assert c.origin == "cold" and c.start_ms > 0
    finally:
        m.close()
        with aetherium.VMM(state_dir=d) as again:
            again.reap(all=True)
        shutil.rmtree(d, ignore_errors=True)
