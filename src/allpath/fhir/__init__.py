"""FHIR R4 adapters: read a Bundle into PatientFacts, export the KB as a PlanDefinition, `$apply` it.

`fhir.resources` and `fhirpathpy` are imported inside the functions that need them, so that
importing this package stays cheap.
"""

from allpath.fhir.importer import (
    FhirInputError,
    ImportResult,
    facts_from_bundle,
    facts_from_resources,
    validate_resource,
)

__all__ = ["FhirInputError", "ImportResult", "facts_from_bundle", "facts_from_resources", "validate_resource"]
