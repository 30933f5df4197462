"""Scores and grades: SINS, ESCC (Bilsky) and the NOMS framing."""
