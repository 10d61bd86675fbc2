"""Database set-up (include/aetherium/store.h): apply the migrations.

The rows themselves are read through Client.list_vms() / list_tasks() /
task(); this module only exposes what a deployment script needs."""
from __future__ import annotations

from typing import Optional

from ._ffi import ffi, lib
from .errors import check


def migrate(database_url: Optional[str] = None) -> int:
    """Apply the library's migrations that the database lacks (safe to
    repeat, and from several processes at once); returns the schema
    version.  database_url defaults to $AETH_DATABASE_URL."""
    out = ffi.new("aeth_store **")
    check(lib.aeth_store_open(out, database_url.encode() if database_url
                              else ffi.NULL))
    store = out[0]
    try:
        check(lib.aeth_store_migrate(store))
        version = ffi.new("int *")
        check(lib.aeth_store_schema_version(version, store))
        return int(version[0])
    finally:
        lib.aeth_store_free(store)
