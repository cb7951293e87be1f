"""Project-wide middleware."""
from csp.middleware import CSPMiddleware
from django.urls import get_urlconf, is_valid_path


class DocumentCSPMiddleware(CSPMiddleware):
    """django-csp's Content-Security-Policy, on HTML documents only.

    A policy governs what a document may load and run; JSON, JavaScript, CSS and CSV responses are
    not documents (nosniff keeps browsers from treating them as one). django-csp builds the header
    for every response, about 30 µs, which the engine's API calls need not pay.
    """

    def process_response(self, request, response):
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)


class ApiTrailingSlashMiddleware:
    """/api/ paths without their trailing slash answer as the route they name, never an HTML redirect.

    CommonMiddleware's APPEND_SLASH would answer `POST /api/v1/size` with a 301 (an empty HTML
    body, and clients do not re-send a POST body on redirect). An API client gets the route itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/") and not path.endswith("/") and self._only_with_slash(path):
            request.path_info += "/"
            request.path += "/"
        return self.get_response(request)

    @staticmethod
    def _only_with_slash(path: str) -> bool:
        urlconf = get_urlconf()
        return not is_valid_path(path, urlconf) and bool(is_valid_path(path + "/", urlconf))
