"""``conveyor.web``: the REST API (the web extra: ``pip install '/path/to/conveyor[web]'``).

    from conveyor.web import create_api
    api = create_api(app)  # an ASGI app: uvicorn myproject.api:api

    service.include_router(api_router(app), prefix="/api/queue")  # in your FastAPI app
    use_error_shape(service)  # its own routes' refusals in the API's error shape too

See docs/api.md.
"""

from .app import api_router, create_api
from .errors import use_error_shape
from .service import WebService
from .tokens import Token, TokenStore

__all__ = ["Token", "TokenStore", "WebService", "api_router", "create_api", "use_error_shape"]
