"""Project-wide views."""
from csp.decorators import csp_update
from django.views.csrf import csrf_failure as django_csrf_failure


@csp_update({"style-src": ["'unsafe-inline'"]})
def csrf_failure(request, reason=""):
    """Django's CSRF failure page (an expired form, say): its own <style> element, allowed on it alone."""
    return django_csrf_failure(request, reason)
