"""allpath: cited treatment options for acute lymphoblastic leukemia (ALL).

>>> from allpath import PatientFacts, recommend
>>> plan = recommend(PatientFacts(age_years=8, disease_status="newly_diagnosed"))
>>> plan.recommendations[0].id
'induction-chemotherapy'
"""

from allpath.engine import Engine, recommend
from allpath.facts import FactsError, PatientFacts, Problem
from allpath.plan import Plan

__all__ = ["Engine", "FactsError", "PatientFacts", "Plan", "Problem", "recommend"]
__version__ = "0.1.0"
