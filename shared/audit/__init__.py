"""The audit trail every service keeps (README "Audit trail"): `trail.py` the hash chain, `capture.py` the
session events that fill it, `views.py` the `GET /audit` route."""

from shared.audit.capture import SYSTEM, acting_as, batch_entry, audit_trail, entry, identify, note, note_rows, trail_of
from shared.audit.trail import GENESIS, AuditTrail, Entry, Verdict, digest, digest_rows

__all__ = ["GENESIS", "SYSTEM", "AuditTrail", "Entry", "Verdict", "acting_as", "audit_trail", "batch_entry",
           "digest", "digest_rows", "entry", "identify", "note", "note_rows", "trail_of"]
