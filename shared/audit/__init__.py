"""The audit trail every service keeps (README "Audit trail"): `trail.py` the hash chain, `capture.py` the
session events that fill it, `views.py` the `GET /audit` route."""

from shared.audit.capture import (
    RESERVED_ACTORS,
    SYSTEM,
    acting_as,
    audit_trail,
    batch_entry,
    entry,
    identify,
    note,
    note_rows,
    trail_of,
)
from shared.audit.trail import GENESIS, AuditTrail, Entry, Verdict, digest, digest_rows

__all__ = ["GENESIS", "RESERVED_ACTORS", "SYSTEM", "AuditTrail", "Entry", "Verdict", "acting_as", "audit_trail",
           "batch_entry", "digest", "digest_rows", "entry", "identify", "note", "note_rows", "trail_of"]
