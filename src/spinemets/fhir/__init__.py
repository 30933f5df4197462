"""FHIR adapter: spinemets results as FHIR resources (R4B models of ``fhir.resources``, the R4 shapes of these
resources).  The core knows nothing of FHIR; this package reads its results."""
