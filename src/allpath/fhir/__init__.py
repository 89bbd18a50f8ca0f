"""FHIR R4 adapters: read a Bundle into PatientFacts, export the KB as a PlanDefinition, `$apply` it.

`fhir.resources` and `fhirpathpy` are imported inside the functions that need them, so that
importing this package stays cheap.
"""

from allpath.fhir.importer import (
    FhirInputError,
    Importer,
    ImporterConfigError,
    ImportResult,
    default_importer,
    facts_from_bundle,
    facts_from_resources,
    validate_resource,
)

__all__ = [
    "FhirInputError",
    "ImportResult",
    "Importer",
    "ImporterConfigError",
    "default_importer",
    "facts_from_bundle",
    "facts_from_resources",
    "validate_resource",
]
