"""CDS Hooks adapter (HL7 CDS Hooks 2.0): the service an EHR calls at order entry.  Reads the core; the core knows
nothing of it."""
