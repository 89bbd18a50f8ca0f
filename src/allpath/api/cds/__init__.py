"""CDS Hooks 2.0 service: discovery, `patient-view` options, `order-sign` safety checks, feedback.

create_cds_router(engine, settings) -> APIRouter   (mount into a larger app)
create_cds_app(engine=None, settings=None) -> FastAPI
"""

from allpath.api.cds.app import create_cds_app
from allpath.api.cds.router import create_cds_router
from allpath.api.cds.settings import CdsConfigError, CdsSettings

__all__ = ["CdsConfigError", "CdsSettings", "create_cds_app", "create_cds_router"]
