"""Project-wide middleware."""
from csp.middleware import CSPMiddleware


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
